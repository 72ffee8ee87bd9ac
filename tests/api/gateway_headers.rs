//! What crosses the gateway in headers (issue 10): the caller's request
//! headers the product must never see, and the product's response headers
//! the caller must never see.

use crate::both_backends;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, spawn_app, Backend};

/// A CGI or WSGI product folds `-` and `_` into one `HTTP_…` key, so a
/// caller's `x_keybroker_instance` would pass for the broker's
/// `X-Keybroker-Instance`. Only the broker's values may land on those keys.
async fn identity_headers_spelled_with_underscores_never_reach_the_upstream(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let forged = [
        ("x_keybroker_instance", "ins_forged"),
        ("X_KEYBROKER_SUBJECT_KIND", "admin"),
        ("x-keybroker_token-id", "forged-jti"),
        ("X_Keybroker_Extra", "forged-extra"),
        ("x_keybroker", "forged-bare"),
        ("x_inbenta_key", "kb_pk_forged_underscore"),
        ("X-Inbenta_Key", "kb_pk_forged_mixed"),
        ("x_access_token", "kb_xt_forged"),
        ("x_forwarded_for", "forged-client-ip"),
    ];
    let mut request = w
        .app
        .client
        .get(w.app.url("/prod/search/v1/search"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(w.token());
    for (name, value) in forged {
        request = request.append_header((name, value));
    }
    let reply = w.app.send(request, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let seen = w.upstream.last();
    let jti = claims_of(w.token())["jti"].as_str().unwrap().to_owned();
    for (key, expected) in [
        ("HTTP_X_KEYBROKER_INSTANCE", w.created.id.as_str()),
        ("HTTP_X_KEYBROKER_SUBJECT_KIND", "server"),
        ("HTTP_X_KEYBROKER_TOKEN_ID", jti.as_str()),
    ] {
        assert_eq!(seen.cgi(key), vec![expected.to_owned()], "{key}");
    }
    let environ = seen.cgi_environ();
    for (key, value) in &environ {
        let identity = key.starts_with("HTTP_X_KEYBROKER");
        let credential = matches!(
            key.as_str(),
            "HTTP_X_INBENTA_KEY" | "HTTP_X_ACCESS_TOKEN" | "HTTP_AUTHORIZATION"
        );
        assert!(
            !credential && (!identity || !value.contains("forged")),
            "{key}: {value} reached the upstream; all: {environ:?}"
        );
    }
    for (_, value) in forged {
        assert!(
            environ.iter().all(|(_, v)| v != value),
            "{value} reached the upstream: {environ:?}"
        );
    }
}

/// IIS and Symfony take the path to serve from `X-Original-URL` or
/// `X-Rewrite-URL` over the request line; the gateway checked the request
/// line, so those headers must not reach the product.
async fn url_override_headers_never_reach_the_upstream(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let request = w
        .app
        .client
        .get(w.app.url("/prod/search/v1/search"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .insert_header(("X-Original-URL", "/chat/v1/chat"))
        .insert_header(("X-Rewrite-URL", "/admin"))
        .insert_header(("x_original_url", "/chat/underscore"))
        .insert_header(("x-custom", "kept"))
        .bearer_auth(w.token());
    let reply = w.app.send(request, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = w.upstream.last();
    assert_eq!(seen.header("x-custom"), Some("kept"));
    for key in ["HTTP_X_ORIGINAL_URL", "HTTP_X_REWRITE_URL"] {
        assert_eq!(
            seen.cgi(key),
            Vec::<String>::new(),
            "{key} reached the upstream"
        );
    }
}

both_backends!(
    identity_headers_spelled_with_underscores_never_reach_the_upstream,
    url_override_headers_never_reach_the_upstream,
);
