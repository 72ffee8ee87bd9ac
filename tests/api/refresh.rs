//! `POST /v1/refreshToken` and `GET /v1/apis`.

use serde_json::json;

use crate::every_backend;
use crate::helpers::{claims_of, spawn_app, spawn_app_with, Backend, Body};

async fn refresh_keeps_the_session_and_changes_the_jti(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    app.clock.advance(600);
    let reply = app.refresh(&created.api_key, &token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let new_token = reply.body["accessToken"].as_str().unwrap();
    let (old, new) = (claims_of(&token), claims_of(new_token));
    assert_eq!(old["sid"], new["sid"]);
    assert_ne!(old["jti"], new["jti"]);
    assert_eq!(
        new["exp"].as_i64().unwrap() - new["iat"].as_i64().unwrap(),
        1200
    );
    assert!(new["iat"].as_i64().unwrap() >= old["iat"].as_i64().unwrap() + 600);
    assert_eq!(reply.body["expires_in"], json!(1200));
    assert!(reply.body["apis"]["search"].is_string());
    // The successor refreshes too.
    let again = app.refresh(&created.api_key, new_token, None).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

async fn refresh_accepts_an_empty_body_of_any_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    for content_type in [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
    ] {
        let request = app
            .client
            .post(app.url("/v1/refreshToken"))
            .insert_header(("x-inbenta-key", created.api_key.as_str()))
            .bearer_auth(&token);
        let reply = app
            .send(request, Some(Body::Raw(Some(content_type), Vec::new())))
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text);
    }
}

async fn refresh_refuses_bad_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;

    let request = app
        .client
        .post(app.url("/v1/refreshToken"))
        .insert_header(("x-inbenta-key", created.api_key.as_str()));
    app.send(request, None)
        .await
        .assert_error(401, "missing_token");

    for garbage in ["garbage", "a.b.c", &token[..token.len() - 5]] {
        let reply = app.refresh(&created.api_key, garbage, None).await;
        reply.assert_error(401, "invalid_token");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#)
        );
    }

    // alg: none with the same claims.
    let payload = token.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    app.refresh(&created.api_key, &none, None)
        .await
        .assert_error(401, "invalid_token");
}

async fn refresh_refuses_a_token_of_another_instance(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, token) = app.server_token().await;
    let other = app.create_instance().await;
    app.refresh(&other.api_key, &token, None)
        .await
        .assert_error(403, "instance_mismatch");
}

async fn refresh_refuses_an_expired_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    app.clock.advance(1200 + 30);
    app.refresh(&created.api_key, &token, None)
        .await
        .assert_error(401, "token_expired");
}

async fn refresh_stops_when_the_secret_is_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        created.id, created.secret_id
    );
    assert_eq!(app.admin("DELETE", &path, None).await.status, 200);
    app.refresh(&created.api_key, &token, None)
        .await
        .assert_error(401, "token_revoked");
}

async fn refresh_stops_at_the_maximum_session_lifetime(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tokens.max_session_seconds = 1800).await;
    let (created, token) = app.server_token().await;
    app.clock.advance(1000);
    let reply = app.refresh(&created.api_key, &token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.body["accessToken"].as_str().unwrap().to_owned();
    // Tokens never outlive their session.
    assert_eq!(reply.body["expires_in"], json!(800));
    app.clock.advance(810);
    app.refresh(&created.api_key, &token, None)
        .await
        .assert_error(401, "session_expired");
}

async fn browser_tokens_refresh_only_from_their_origin(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (_, key, _) = app.add_domain_key(&created.id, &["example.com"]).await;
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    let token = reply.body["accessToken"].as_str().unwrap().to_owned();

    let ok = app
        .refresh(&created.api_key, &token, Some("https://example.com"))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        claims_of(ok.body["accessToken"].as_str().unwrap())["org"],
        json!("https://example.com")
    );
    app.refresh(&created.api_key, &token, Some("https://other.example"))
        .await
        .assert_error(403, "origin_not_allowed");
    app.refresh(&created.api_key, &token, None)
        .await
        .assert_error(403, "origin_not_allowed");

    // And a server token is never refreshed from a browser.
    let (server, server_token) = app.server_token().await;
    app.refresh(&server.api_key, &server_token, Some("https://example.com"))
        .await
        .assert_error(403, "secret_from_browser");
}

async fn apis_lists_the_products(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    let reply = app.apis(&created.api_key, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"apis": {"chat": app.url("/prod/chat"), "search": app.url("/prod/search")}})
    );
    let other = app.create_instance().await;
    app.apis(&other.api_key, &token)
        .await
        .assert_error(403, "instance_mismatch");
}

every_backend!(
    refresh_keeps_the_session_and_changes_the_jti,
    refresh_accepts_an_empty_body_of_any_type,
    refresh_refuses_bad_tokens,
    refresh_refuses_a_token_of_another_instance,
    refresh_refuses_an_expired_token,
    refresh_stops_when_the_secret_is_revoked,
    refresh_stops_at_the_maximum_session_lifetime,
    browser_tokens_refresh_only_from_their_origin,
    apis_lists_the_products;
    shared:
    refresh_refuses_a_revoked_credential_even_without_its_revocation_entry,
);

/// Revoking a secret writes its status and then lists its tokens as revoked.
/// Should the second write be lost, refresh still refuses to extend a session
/// of a revoked credential.
async fn refresh_refuses_a_revoked_credential_even_without_its_revocation_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        created.id, created.secret_id
    );
    assert_eq!(app.admin("DELETE", &path, None).await.status, 200);
    app.redis().delete_the_key_matching(&format!(
        "*:{{{}}}:rev:cred:{}",
        created.id, created.secret_id
    ));

    app.refresh(&created.api_key, &token, None)
        .await
        .assert_error(401, "credential_revoked");
}
