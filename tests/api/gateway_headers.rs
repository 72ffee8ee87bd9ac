//! What crosses the gateway in headers (issue 10): the caller's request
//! headers the product must never see, and the product's response headers
//! the caller must never see.

use serde_json::json;

use crate::every_backend;
use crate::fixture::{Fixture, TokenHeader};
use crate::helpers::{claims_of, spawn_app, Backend, Reply};

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

/// Every value of a response header, in order.
fn all<'a>(reply: &'a Reply, name: &str) -> Vec<&'a str> {
    reply
        .headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The response headers whose names start with `access-control-`.
fn cors_headers(reply: &Reply) -> Vec<(String, String)> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("access-control-"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect()
}

/// A product's own CORS headers (`Access-Control-Allow-Credentials: true`
/// beside `*`), its `Server` and, by default, its cookies never reach the
/// caller; keybroker's CORS headers are the only ones.
async fn product_cors_server_and_cookies_stay_behind_the_gateway(backend: Backend) {
    let w = Fixture::bare(spawn_app(backend).await).await;
    let origin = "https://shop.example.com";
    let (view, token) = w
        .experience(json!({"slug": "shop", "allowed_origins": [origin]}))
        .await;
    assert_eq!(view["pass_set_cookie"], json!(false), "off by default");
    let path = "/prod/shop/v1/product-headers";

    let reply = w.get_xt(path, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.header("x-upstream"),
        Some("test"),
        "other headers pass"
    );
    assert_eq!(all(&reply, "set-cookie"), Vec::<&str>::new());
    assert_eq!(all(&reply, "server"), Vec::<&str>::new());
    assert_eq!(cors_headers(&reply), vec![], "no Origin, no CORS headers");

    let reply = w
        .call_xt(
            path,
            &token,
            TokenHeader::AccessToken,
            &[("origin", origin)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(all(&reply, "access-control-allow-origin"), vec![origin]);
    let exposed = all(&reply, "access-control-expose-headers");
    assert_eq!(exposed.len(), 1, "{exposed:?}");
    assert!(
        exposed[0].contains("ratelimit-limit") && !exposed[0].contains("x-product-secret"),
        "{exposed:?}"
    );
    let mut names: Vec<String> = cors_headers(&reply).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "access-control-allow-origin",
            "access-control-expose-headers"
        ],
        "only keybroker's CORS headers"
    );
    assert_eq!(all(&reply, "set-cookie"), Vec::<&str>::new());
    assert_eq!(all(&reply, "server"), Vec::<&str>::new());
}

/// `pass_set_cookie` lets one experience's cookies through, and is shown and
/// changed like every other experience setting.
async fn set_cookie_passes_only_for_experiences_that_allow_it(backend: Backend) {
    let w = Fixture::bare(spawn_app(backend).await).await;
    let (view, token) = w
        .experience(json!({"slug": "shop", "pass_set_cookie": true}))
        .await;
    assert_eq!(view["pass_set_cookie"], json!(true));
    let path = "/prod/shop/product-headers";
    let cookies = vec![
        "product_session=s3cr3t; Path=/; HttpOnly",
        "product_pref=dark; Path=/",
    ];
    let reply = w.get_xt(path, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(all(&reply, "set-cookie"), cookies);
    assert_eq!(all(&reply, "server"), Vec::<&str>::new());
    assert_eq!(cors_headers(&reply), vec![]);

    let reply = w
        .app
        .admin(
            "PATCH",
            &w.experience_path("/shop"),
            Some(json!({"pass_set_cookie": false})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["pass_set_cookie"], json!(false));
    assert_eq!(
        all(&w.get_xt(path, &token).await, "set-cookie"),
        Vec::<&str>::new()
    );

    let instance = format!("/admin/v1/instances/{}", w.created.id);
    let reply = w.app.admin("GET", &instance, None).await;
    assert_eq!(
        reply.body["products"]["shop"]["pass_set_cookie"],
        json!(false)
    );
    let reply = w
        .app
        .admin(
            "PATCH",
            &instance,
            Some(json!({"products": {"shop": {"pass_set_cookie": true}}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["products"]["shop"]["pass_set_cookie"],
        json!(true)
    );
    assert_eq!(all(&w.get_xt(path, &token).await, "set-cookie"), cookies);
}

every_backend!(
    identity_headers_spelled_with_underscores_never_reach_the_upstream,
    url_override_headers_never_reach_the_upstream,
    product_cors_server_and_cookies_stay_behind_the_gateway,
    set_cookie_passes_only_for_experiences_that_allow_it,
);
