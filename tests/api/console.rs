//! The admin console (SPEC §11) is served from the binary with a strict
//! Content-Security-Policy, and a config switch turns it off. Its behaviour in
//! a browser is tested in Chromium (`sdk/browser-test/console.test.mjs`).

use crate::helpers::{spawn_app, spawn_app_with, Backend};

const INDEX: &str = include_str!("../../console/index.html");

fn assert_locked_down(reply: &crate::helpers::Reply, path: &str) {
    let csp = reply.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{path}: {directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-"), "{path}: {csp}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
    assert_eq!(
        reply.header("cross-origin-opener-policy"),
        Some("same-origin"),
        "{path}"
    );
}

#[actix_web::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = spawn_app(Backend::Memory).await;
    let page = app.get("/console").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.text, INDEX);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_locked_down(&page, "/console");
    assert!(!INDEX.contains("<script>"), "no inline script");
    for (path, content_type) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_locked_down(&reply, path);
    }
    app.get("/console/nothing.js")
        .await
        .assert_error(404, "route_not_found");
}

#[actix_web::test]
async fn the_console_can_be_switched_off() {
    let app = spawn_app_with(Backend::Memory, |s| s.console.enabled = false).await;
    app.get("/console")
        .await
        .assert_error(404, "route_not_found");
    app.get("/console/app.js")
        .await
        .assert_error(404, "route_not_found");
}
