//! The layout rules of `../shared/STYLE.md`, checked on the source itself:
//! no file under `src/` over 500 lines, `domain/` free of actix and redis,
//! `app/` free of actix, and no import cycle between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let module = std::iter::once("crate".to_owned())
                .chain(parts)
                .collect::<Vec<_>>()
                .join("::");
            (module, path)
        })
        .collect()
}

/// The code of a file without its comments and unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_source_file_is_over_500_lines() {
    for (_, path) in sources() {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 500, "{} has {lines} lines", path.display());
    }
}

#[test]
fn domain_and_app_stay_apart_from_http_and_storage_engines() {
    for (module, path) in sources() {
        let code = code(&path);
        if module.starts_with("crate::domain") {
            for word in ["actix", "redis::", "use redis"] {
                assert!(!code.contains(word), "{module} uses {word}");
            }
        }
        if module.starts_with("crate::app") {
            assert!(!code.contains("actix"), "{module} uses actix");
            assert!(!code.contains("crate::http"), "{module} uses crate::http");
        }
    }
}

/// Each `crate::…` or `super::…` path in the code, resolved to the longest
/// module it names.
fn imports(module: &str, path: &Path, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code(path);
    let parent = module.rsplit_once("::").map_or("crate", |(p, _)| p);
    let mut found = BTreeSet::new();
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let tail: String = code[at + start.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let base = if start == "crate::" { "crate" } else { parent };
            let mut full = format!("{base}::{}", tail.trim_end_matches(':'));
            while !known.contains(&full) {
                match full.rsplit_once("::") {
                    Some((head, _)) => full = head.to_owned(),
                    None => break,
                }
            }
            if known.contains(&full) && full != module {
                found.insert(full);
            }
        }
    }
    found
}

#[test]
fn modules_import_each_other_without_cycles() {
    let files = sources();
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let edges: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|(m, p)| (m.clone(), imports(m, p, &known)))
        .collect();
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), false);
        stack.push(node.to_owned());
        for next in &edges[node] {
            match state.get(next) {
                Some(false) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(true) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), true);
        None
    }
    let mut state = BTreeMap::new();
    for module in edges.keys() {
        if !state.contains_key(module) {
            let cycle = visit(module, &edges, &mut state, &mut Vec::new());
            assert!(
                cycle.is_none(),
                "import cycle: {}",
                cycle.unwrap().join(" -> ")
            );
        }
    }
    assert!(edges["crate::app::gateway"].contains("crate::app::access"));
}
