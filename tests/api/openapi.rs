//! `openapi.yaml` describes every route the router serves, and no other.

use std::collections::BTreeSet;

/// (method, path) pairs under `paths:`: path keys at two spaces, methods at four.
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    let mut found = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
            path = key
                .trim_end()
                .strip_suffix(':')
                .map(|k| k.trim_matches(|c| c == '"' || c == '\'').to_owned());
        } else if let Some(key) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) {
            let key = key.trim_end().trim_end_matches(':');
            let methods = ["get", "post", "put", "patch", "delete", "options", "head"];
            if let (Some(path), true) = (&path, methods.contains(&key)) {
                found.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// `/prod/{product}/{path:.*}` (router) is `/prod/{product}/{path}` (OpenAPI).
fn openapi_path(router_path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    let mut skipping = false;
    for c in router_path.chars() {
        match c {
            '{' => in_param = true,
            ':' if in_param => skipping = true,
            '}' => {
                in_param = false;
                skipping = false;
            }
            _ if skipping => continue,
            _ => {}
        }
        if !skipping || c == '}' {
            out.push(c);
        }
    }
    out
}

#[test]
fn openapi_documents_every_route_and_nothing_else() {
    let documented = documented();
    let served: BTreeSet<(String, String)> = keybroker::http::ROUTES
        .iter()
        .flat_map(|(method, path)| {
            let path = openapi_path(path);
            let methods: Vec<&str> = if *method == "ANY" {
                vec!["GET", "POST", "PUT", "PATCH", "DELETE"]
            } else {
                vec![method]
            };
            methods
                .into_iter()
                .map(move |m| (m.to_owned(), path.clone()))
        })
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    // OPTIONS on /v1/* and /prod/* is the CORS preflight, answered before routing.
    let extra: Vec<_> = documented
        .difference(&served)
        .filter(|(method, path)| {
            !(method == "OPTIONS" && (path.starts_with("/v1/") || path.starts_with("/prod/")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "openapi.yaml documents routes the router lacks: {extra:?}"
    );
}
