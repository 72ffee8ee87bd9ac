//! The error reasons the documentation names are the ones the code answers
//! with, at the same status: `docs/errors.md`'s table and `openapi.yaml` (its
//! `Error.reason` enum and every example body) are held to
//! `keybroker::error::Reason`, the one table.

use std::collections::BTreeSet;

use keybroker::error::Reason;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn table() -> BTreeSet<(u16, String)> {
    Reason::ALL
        .iter()
        .map(|r| (r.status().as_u16(), r.as_str().to_owned()))
        .collect()
}

/// Rows `| 404 | `not_found` | … |` of the errors guide.
fn documented_rows() -> BTreeSet<(u16, String)> {
    read("docs/errors.md")
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let status = cells.next()?.parse::<u16>().ok()?;
            let reason = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((status, reason.to_owned()))
        })
        .collect()
}

#[test]
fn the_errors_guide_lists_every_reason_at_its_status() {
    let documented = documented_rows();
    let table = table();
    let missing: Vec<_> = table.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "reasons missing from docs/errors.md: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/errors.md lists what the code never answers: {unknown:?}"
    );
}

#[test]
fn openapi_names_every_reason_and_each_example_at_its_status() {
    let text = read("openapi.yaml");
    let lines: Vec<&str> = text.lines().collect();
    // The `Error` schema's `reason` enum.
    let enum_start = lines
        .iter()
        .position(|l| l.trim() == "- already_exists")
        .expect("the Error schema's reason enum");
    let indent = lines[enum_start].len() - lines[enum_start].trim_start().len();
    let mut first = enum_start;
    while lines[first - 1].trim_start().starts_with("- ") {
        first -= 1;
    }
    let enumerated: BTreeSet<String> = lines[first..]
        .iter()
        .take_while(|l| {
            l.trim_start().starts_with("- ") && l.len() - l.trim_start().len() == indent
        })
        .map(|l| l.trim().trim_start_matches("- ").to_owned())
        .collect();
    let names: BTreeSet<String> = table().into_iter().map(|(_, r)| r).collect();
    assert_eq!(enumerated, names, "openapi.yaml's Error.reason enum");

    // Every example error body: `code: N` then, within a few lines, `reason: x`.
    let table = table();
    let mut examples = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(code) = line.trim().strip_prefix("code: ") else {
            continue;
        };
        let Ok(code) = code.parse::<u16>() else {
            continue;
        };
        let reason = lines[i + 1..]
            .iter()
            .take(4)
            .find_map(|l| l.trim().strip_prefix("reason: "))
            .unwrap_or_else(|| panic!("openapi.yaml line {}: code without reason", i + 1));
        assert!(
            table.contains(&(code, reason.to_owned())),
            "openapi.yaml line {}: {code} {reason} is not in the reason table",
            i + 1
        );
        examples += 1;
    }
    assert!(examples > 20, "only {examples} example error bodies found");
}
