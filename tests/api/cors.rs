//! Allowed origins and CORS: an experience's allowed origins at the gateway
//! and in preflights, refusals readable only by allowed origins, and the
//! `/v1/auth` preflight following domain keys.

use serde_json::json;

use crate::every_backend;
use crate::fixture::{Fixture, TokenHeader};
use crate::helpers::{spawn_app, Backend};

async fn allowed_origins_and_cors(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "allowed_origins": ["https://shop.example.com", "https://*.example.org"]}))
        .await;
    let (_, open) = s
        .experience(json!({"slug": "open", "kind": "custom"}))
        .await;

    let preflight = |path: &'static str, origin: &'static str| {
        let request = s
            .app
            .client
            .request(awc::http::Method::OPTIONS, s.app.url(path))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "GET"))
            .insert_header(("access-control-request-headers", "x-access-token"));
        s.app.send(request, None)
    };
    let allowed = preflight("/prod/search/v1/search", "https://shop.example.com").await;
    assert_eq!(allowed.status, 204, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert!(allowed
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-access-token"));
    assert!(allowed
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    let wildcard = preflight("/prod/search/v1/search", "https://a.example.org").await;
    assert_eq!(wildcard.status, 204);
    let refused = preflight("/prod/search/v1/search", "https://evil.example").await;
    refused.assert_error(403, "origin_not_allowed");
    assert!(refused.header("access-control-allow-origin").is_none());
    let any = preflight("/prod/open/v1/x", "https://evil.example").await;
    assert_eq!(any.status, 204, "empty allowed_origins allows every origin");

    let from = |origin: &'static str| {
        let request = s
            .app
            .client
            .get(s.app.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", token.as_str()))
            .insert_header(("origin", origin));
        s.app.send(request, None)
    };
    let ok = from("https://shop.example.com").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert!(ok.header("vary").unwrap().contains("Origin"));
    let before = s.upstream.hits();
    let bad = from("https://evil.example").await;
    bad.assert_error(403, "origin_not_allowed");
    assert!(bad.header("access-control-allow-origin").is_none());
    assert_eq!(s.upstream.hits(), before);
    // A refusal is readable by an origin the preflight allows (so that a page
    // can see 401 and act on it), and not by one it refuses.
    let unknown = keybroker::domain::credential::ExperienceToken::generate();
    let refused = |origin: &'static str| {
        let request = s
            .app
            .client
            .get(s.app.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", unknown.expose()))
            .insert_header(("origin", origin));
        s.app.send(request, None)
    };
    let readable = refused("https://shop.example.com").await;
    readable.assert_error(401, "invalid_token");
    assert_eq!(
        readable.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let opaque = refused("https://evil.example").await;
    opaque.assert_error(401, "invalid_token");
    assert!(opaque.header("access-control-allow-origin").is_none());

    // No Origin: server to server, not subject to CORS.
    let server = s.get_xt("/prod/search/v1/search", &token).await;
    assert_eq!(server.status, 200);
    assert!(server.header("access-control-allow-origin").is_none());
    // Empty list: any origin.
    let reply = s
        .call_xt(
            "/prod/open/v1/x",
            &open,
            TokenHeader::AccessToken,
            &[("origin", "https://anyone.example")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://anyone.example")
    );

    // Preflight on /v1/auth follows domain keys.
    let (_, _, _) = s
        .app
        .add_domain_key(&s.created.id, &["app.example.net"])
        .await;
    assert_eq!(
        preflight("/v1/auth", "https://app.example.net")
            .await
            .status,
        204
    );
    preflight("/v1/auth", "https://other.example.net")
        .await
        .assert_error(403, "origin_not_allowed");
}

/// An allowed origin with its scheme written loses only that scheme's
/// default port: `https://localhost:80` is the origin on port 80, not
/// `https://localhost`, on loopback where both schemes are allowed.
async fn a_written_scheme_keeps_a_port_that_is_not_its_default(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search", "allowed_origins": ["https://localhost:80", "http://localhost:443", "https://127.0.0.1:443"]}))
        .await;
    assert_eq!(
        body["allowed_origins"],
        json!([
            "https://localhost:80",
            "http://localhost:443",
            "https://127.0.0.1"
        ])
    );
    for (origin, status) in [
        ("https://localhost:80", 200),
        ("http://localhost:443", 200),
        ("https://127.0.0.1", 200),
        ("https://localhost", 403),
        ("http://localhost", 403),
        ("http://127.0.0.1", 403),
    ] {
        let reply = s
            .call_xt(
                "/prod/search/v1/search",
                &token,
                TokenHeader::AccessToken,
                &[("origin", origin)],
            )
            .await;
        assert_eq!(reply.status, status, "{origin}: {}", reply.text);
        if status == 403 {
            reply.assert_error(403, "origin_not_allowed");
        }
    }
}

every_backend!(
    allowed_origins_and_cors,
    a_written_scheme_keeps_a_port_that_is_not_its_default
);
