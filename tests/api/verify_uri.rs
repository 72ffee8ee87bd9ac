//! Which header `/v1/verify` reads the original request from (issue 10,
//! finding 5): the one configured (`verify.uri_header`), never another
//! spelling a client slipped past the proxy.

use serde_json::json;

use crate::every_backend;
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

/// One family of forward-auth headers: the URI header and its method header,
/// as the broker is told to read them (`configured`) or not.
struct Family {
    uri: &'static str,
    method: &'static str,
    /// How the missing-header message spells it.
    name: &'static str,
}

const ORIGINAL: Family = Family {
    uri: "x-original-uri",
    method: "x-original-method",
    name: "X-Original-URI",
};
const FORWARDED: Family = Family {
    uri: "x-forwarded-uri",
    method: "x-forwarded-method",
    name: "X-Forwarded-Uri",
};

/// Only the `read` family names the request; the `ignored` one, which a
/// client can slip past the proxy, never does.
async fn only_one_family_counts(w: &Fixture, read: &Family, ignored: &Family) {
    let (_, search) = w
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;

    // The request is for `chat`; the client claims `search`.
    let reply = verify_with(
        w,
        &search,
        &[
            (ignored.uri, "/search/v1/search"),
            (read.uri, "/chat/v1/chat"),
        ],
    )
    .await;
    reply.assert_error(403, "experience_mismatch");

    let reply = verify_with(
        w,
        &search,
        &[
            (ignored.uri, "/chat/v1/chat"),
            (ignored.method, "DELETE"),
            (read.uri, "/search/v1/search"),
            (read.method, "post"),
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

    let reply = verify_with(w, &search, &[(ignored.uri, "/search/v1/search")]).await;
    reply.assert_error(400, "missing_original_uri");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(read.name)),
        "the message names the configured header: {}",
        reply.text
    );
    assert_eq!(w.upstream.hits(), 0, "verify proxies nothing");
}

/// Traefik's ForwardAuth sets `X-Forwarded-Uri` and passes the client's own
/// headers through: a client's `X-Original-URI` must not name the product.
async fn behind_traefik_only_the_forwarded_uri_counts(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.verify.uri_header = "X-Forwarded-Uri".into();
    })
    .await;
    only_one_family_counts(&Fixture::bare(app).await, &FORWARDED, &ORIGINAL).await;
}

/// The default is the nginx example's `X-Original-URI`; a client's
/// `X-Forwarded-Uri` (nginx passes it through) is ignored.
async fn by_default_only_the_original_uri_counts(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    only_one_family_counts(&Fixture::bare(app).await, &ORIGINAL, &FORWARDED).await;
}

every_backend!(
    behind_traefik_only_the_forwarded_uri_counts,
    by_default_only_the_original_uri_counts,
);
