//! The README stays a landing page, and no relative link in it or in `docs/`
//! leads nowhere: a guide moved or a heading renamed breaks this test, not a
//! reader's click.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `docs/*.md`.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ directory")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines outside fenced code blocks, with their line numbers: a `#` or a
/// `](` inside a code block is shell or JSON, not Markdown.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"]
            .into_iter()
            .find(|marker| trimmed.starts_with(marker));
        match (fence, marker) {
            (None, Some(marker)) => fence = Some(marker),
            (Some(open), Some(marker)) if open == marker => fence = None,
            (None, None) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// The line without its code spans, so that `` `[a](b)` `` is not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    for (index, part) in line.split('`').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and
/// `_` dropped, spaces turned into `-`; a repeated slug gets `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let mut slug = String::new();
        for c in line[hashes..].trim().chars() {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                slug.extend(c.to_lowercase());
            } else if c == ' ' {
                slug.push('-');
            }
        }
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// Every inline link target, `[text](target)` or `![alt](target)`, with its
/// line number; a title after the target (`(target "title")`) is dropped.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            found.push((number, target.to_owned()));
            rest = &rest[end + 1..];
        }
    }
    found
}

#[test]
fn the_readme_is_a_landing_page() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it at most {README_MAX_LINES} and move guides to docs/"
    );
}

#[test]
fn every_relative_link_in_the_readme_and_the_guides_resolves() {
    let mut dead = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        let dir = file.parent().expect("a file's directory");
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (line, target) in links(&text) {
            let external = ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| target.starts_with(scheme));
            if external || target.is_empty() {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            // A pure `#anchor` names a heading of this same file.
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                dead.push(format!("{name}:{line}: {target} (no such file)"));
                continue;
            }
            let is_markdown = resolved.extension().is_some_and(|ext| ext == "md");
            if let (Some(anchor), true) = (anchor, is_markdown) {
                if !anchors(&read(&resolved)).contains(anchor) {
                    dead.push(format!("{name}:{line}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(checked > 0, "found no relative links at all");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn every_guide_is_linked_from_the_readme() {
    let readme = read(&root().join("README.md"));
    let targets: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap_or("").to_owned())
        .collect();
    let missing: Vec<String> = markdown_files()
        .into_iter()
        .skip(1)
        .map(|file| {
            let name = file.file_name().expect("a file name").to_string_lossy();
            format!("docs/{name}")
        })
        .filter(|doc| !targets.contains(doc))
        .collect();
    assert!(
        missing.is_empty(),
        "guides the README's docs index does not link: {missing:?}"
    );
}

#[test]
fn anchors_follow_github_s_slug_rule() {
    let text = "# keybroker\n## Brute-force limits on `/v1/auth`\n```sh\n# not a heading\n```\n\
                ## Sessions, refresh and logout\n## Errors\n## Errors\n";
    let expected: BTreeSet<String> = [
        "keybroker",
        "brute-force-limits-on-v1auth",
        "sessions-refresh-and-logout",
        "errors",
        "errors-1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(anchors(text), expected);
}
