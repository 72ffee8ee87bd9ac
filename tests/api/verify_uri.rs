//! Which header `/v1/verify` reads the original request from (issue 10,
//! finding 5): the one configured (`verify.uri_header`), never another
//! spelling a client slipped past the proxy.

use serde_json::json;

use crate::both_backends;
use crate::fixture::Fixture;
use crate::helpers::{spawn_app_with, Backend, Reply};

/// A verify sub-request with an experience token and the given headers.
async fn verify_with(w: &Fixture, token: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-access-token", token));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    w.app.send(request, None).await
}

/// Traefik's ForwardAuth sets `X-Forwarded-Uri` and passes the client's own
/// headers through: a client's `X-Original-URI` must not name the product.
async fn behind_traefik_only_the_forwarded_uri_counts(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.verify.uri_header = "X-Forwarded-Uri".into();
    })
    .await;
    let w = Fixture::bare(app).await;
    let (_, search) = w
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;

    // The request is for `chat`; the client claims `search`.
    let reply = verify_with(
        &w,
        &search,
        &[
            ("x-original-uri", "/search/v1/search"),
            ("x-forwarded-uri", "/chat/v1/chat"),
        ],
    )
    .await;
    reply.assert_error(403, "experience_mismatch");

    let reply = verify_with(
        &w,
        &search,
        &[
            ("x-original-uri", "/chat/v1/chat"),
            ("x-original-method", "DELETE"),
            ("x-forwarded-uri", "/search/v1/search"),
            ("x-forwarded-method", "post"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["product"], json!("search"));
    assert_eq!(
        reply.body["method"],
        json!("POST"),
        "the method header of the same family"
    );

    let reply = verify_with(&w, &search, &[("x-original-uri", "/search/v1/search")]).await;
    reply.assert_error(400, "missing_original_uri");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Forwarded-Uri")),
        "the message names the configured header: {}",
        reply.text
    );
    assert_eq!(w.upstream.hits(), 0, "verify proxies nothing");
}

/// The default is the nginx example's `X-Original-URI`; a client's
/// `X-Forwarded-Uri` (nginx passes it through) is ignored.
async fn by_default_only_the_original_uri_counts(backend: Backend) {
    let w = Fixture::bare(spawn_app_with(backend, |_| {}).await).await;
    let (_, search) = w
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let reply = verify_with(
        &w,
        &search,
        &[
            ("x-original-uri", "/chat/v1/chat"),
            ("x-forwarded-uri", "/search/v1/search"),
        ],
    )
    .await;
    reply.assert_error(403, "experience_mismatch");

    let reply = verify_with(
        &w,
        &search,
        &[
            ("x-original-uri", "/search/v1/search"),
            ("x-original-method", "put"),
            ("x-forwarded-method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["method"], json!("PUT"));

    let reply = verify_with(&w, &search, &[("x-forwarded-uri", "/search/v1/search")]).await;
    reply.assert_error(400, "missing_original_uri");
    let message = &reply.body["error"]["message"];
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("X-Original-URI")),
        "{message}"
    );
}

both_backends!(
    behind_traefik_only_the_forwarded_uri_counts,
    by_default_only_the_original_uri_counts,
);
