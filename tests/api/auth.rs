//! `POST /v1/auth`: secrets, domain keys, origins, pending keys, and the one
//! uniform 401 for every wrong credential.

use serde_json::json;

use crate::every_backend;
use crate::helpers::{claims_of, spawn_app, spawn_app_with, Backend, Body};

async fn secret_exchange_returns_the_documented_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    let token = body["accessToken"].as_str().expect("accessToken");
    assert_eq!(body["expires_in"], json!(1200));
    let now = chrono::Utc::now().timestamp();
    let server_time = body["server_time"].as_i64().unwrap();
    assert!((server_time - now).abs() < 5);
    assert_eq!(body["expiration"].as_i64().unwrap(), server_time + 1200);
    assert_eq!(
        body["apis"],
        json!({
            "chat": app.url("/prod/chat"),
            "search": app.url("/prod/search"),
        })
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let claims = claims_of(token);
    assert_eq!(claims["sub"], json!(created.id));
    assert_eq!(claims["kind"], json!("server"));
    assert_eq!(claims["cred"], json!(created.secret_id));
    assert!(claims.get("org").is_none());
}

async fn form_encoded_secret_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let request = app
        .client
        .post(app.url("/v1/auth"))
        .insert_header(("x-inbenta-key", created.api_key.as_str()));
    let form = format!("secret={}", created.secret);
    let reply = app
        .send(
            request,
            Some(Body::Raw(
                Some("application/x-www-form-urlencoded"),
                form.into_bytes(),
            )),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.body["accessToken"].is_string());
}

async fn token_ttl_is_the_instance_setting(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_instance_with(json!({"name": "short", "token_ttl_seconds": 300}))
        .await;
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.body["expires_in"], json!(300));
}

async fn every_wrong_credential_gets_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_instance().await;
    let b = app.create_instance().await;
    let unknown_key = keybroker::domain::credential::ApiKey::generate();
    let unknown_secret = keybroker::domain::credential::Secret::generate();
    let bad_checksum = {
        let mut s = a.secret.clone();
        let last = s.pop().unwrap();
        s.push(if last == 'a' { 'b' } else { 'a' });
        s
    };

    let cases = [
        (
            "unknown API key",
            unknown_key.expose().to_owned(),
            a.secret.clone(),
        ),
        (
            "malformed API key",
            "kb_pk_nope".to_owned(),
            a.secret.clone(),
        ),
        (
            "wrong secret",
            a.api_key.clone(),
            unknown_secret.expose().to_owned(),
        ),
        (
            "secret of another instance",
            a.api_key.clone(),
            b.secret.clone(),
        ),
        ("bad checksum", a.api_key.clone(), bad_checksum),
        (
            "domain key sent as secret",
            a.api_key.clone(),
            "kb_dk_x".to_owned(),
        ),
    ];
    let mut bodies = Vec::new();
    for (case, api_key, secret) in cases {
        let reply = app.auth_with_secret(&api_key, &secret).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        assert_eq!(reply.reason(), "invalid_credentials", "{case}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{case}");
        bodies.push(reply.text);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "bodies differ: {bodies:?}"
    );
}

async fn missing_api_key_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let request = app.client.post(app.url("/v1/auth"));
    let reply = app
        .send(request, Some(Body::Json(json!({"secret": created.secret}))))
        .await;
    reply.assert_error(401, "missing_api_key");
}

async fn revoked_secret_gets_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    // Accepted once, so that the broker knows it (see `lookup`).
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        created.id, created.secret_id
    );
    assert_eq!(app.admin("DELETE", &path, None).await.status, 200);
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    reply.assert_error(401, "invalid_credentials");
}

async fn secret_from_a_browser_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let reply = app
        .auth(
            &created.api_key,
            json!({"secret": created.secret}),
            Some("https://example.com"),
        )
        .await;
    reply.assert_error(403, "secret_from_browser");
}

async fn domain_key_from_a_matching_origin_gets_a_browser_token(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (key_id, key, _) = app
        .add_domain_key(&created.id, &["example.com", "*.example.org"])
        .await;

    for origin in [
        "https://example.com",
        "https://app.example.org",
        "https://a.b.example.org",
    ] {
        let reply = app
            .auth_with_domain_key(&created.api_key, &key, Some(origin))
            .await;
        assert_eq!(reply.status, 200, "{origin}: {}", reply.text);
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
        let claims = claims_of(reply.body["accessToken"].as_str().unwrap());
        assert_eq!(claims["kind"], json!("browser"));
        assert_eq!(claims["org"], json!(origin));
        assert_eq!(claims["cred"], json!(key_id));
    }
    // The camelCase alias of Inbenta clients.
    let reply = app
        .auth(
            &created.api_key,
            json!({"domainKey": key}),
            Some("https://example.com"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn domain_key_origin_rules(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (_, key, _) = app
        .add_domain_key(&created.id, &["example.com", "*.example.org"])
        .await;

    let refused = [
        None,
        Some("https://evil-example.com"),
        Some("https://example.com.evil.io"),
        Some("https://www.example.com"),
        Some("http://example.com"),
        Some("https://example.com:8443"),
        Some("https://example.org"),
        Some("https://evilexample.org"),
        Some("null"),
        Some("not an origin"),
    ];
    for origin in refused {
        let reply = app
            .auth_with_domain_key(&created.api_key, &key, origin)
            .await;
        assert_eq!(reply.status, 403, "{origin:?}: {}", reply.text);
        assert_eq!(reply.reason(), "origin_not_allowed", "{origin:?}");
        assert!(reply.header("access-control-allow-origin").is_none());
    }
}

async fn pending_domain_key_says_when(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let (_, key, body) = app.add_domain_key(&created.id, &["example.com"]).await;
    assert_eq!(body["status"], json!("pending"));

    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    reply.assert_error(403, "domain_key_pending");
    let active_at = reply.body["error"]["active_at"]
        .as_i64()
        .expect("active_at");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (active_at - (now + 300)).abs() <= 5,
        "active_at {active_at}, now {now}"
    );
    let retry_after: i64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (295..=300).contains(&retry_after),
        "Retry-After {retry_after}"
    );

    app.clock.advance(300);
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn revoked_domain_key_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (id, key, _) = app.add_domain_key(&created.id, &["example.com"]).await;
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let path = format!("/admin/v1/instances/{}/domain-keys/{id}", created.id);
    let reply = app.admin("DELETE", &path, None).await;
    assert_eq!(reply.body["status"], json!("revoked"));
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    reply.assert_error(401, "invalid_credentials");
}

async fn changed_domains_apply_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (id, key, _) = app.add_domain_key(&created.id, &["example.com"]).await;
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let path = format!("/admin/v1/instances/{}/domain-keys/{id}", created.id);
    let reply = app
        .admin(
            "PATCH",
            &path,
            Some(json!({"domains": ["shop.example.net"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["domains"], json!(["shop.example.net"]));

    let old = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    old.assert_error(403, "origin_not_allowed");
    let new = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://shop.example.net"))
        .await;
    assert_eq!(new.status, 200, "{}", new.text);
}

async fn secret_sent_as_domain_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let reply = app
        .auth_with_domain_key(
            &created.api_key,
            &created.secret,
            Some("https://example.com"),
        )
        .await;
    reply.assert_error(401, "invalid_credentials");
}

every_backend!(
    secret_exchange_returns_the_documented_fields,
    form_encoded_secret_is_accepted,
    token_ttl_is_the_instance_setting,
    every_wrong_credential_gets_the_same_401,
    missing_api_key_is_401,
    revoked_secret_gets_the_same_401,
    secret_from_a_browser_is_refused,
    domain_key_from_a_matching_origin_gets_a_browser_token,
    domain_key_origin_rules,
    pending_domain_key_says_when,
    revoked_domain_key_is_refused,
    changed_domains_apply_at_once,
    secret_sent_as_domain_key_is_refused;
    shared:
    a_warm_second_process_sees_every_credential_change_at_once,
    a_warm_second_process_serves_apis_and_refresh_from_current_configuration,
);

/// A second process that has accepted a secret and a domain key before (and
/// so looks them up where they live, with its cached instance) sees every
/// change made through the first process on its very next exchange.
async fn a_warm_second_process_sees_every_credential_change_at_once(backend: Backend) {
    let a = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let b = a.spawn_peer().await;
    let created = a.create_instance().await;
    let (key_id, key, _) = a.add_domain_key(&created.id, &["example.com"]).await;
    let with_secret = || b.auth_with_secret(&created.api_key, &created.secret);
    let with_key =
        |origin: &'static str| b.auth_with_domain_key(&created.api_key, &key, Some(origin));
    for _ in 0..2 {
        assert_eq!(with_secret().await.status, 200);
        assert_eq!(with_key("https://example.com").await.status, 200);
    }
    let instance = format!("/admin/v1/instances/{}", created.id);

    // A shortens the token lifetime: B's next token has it.
    let reply = a
        .admin("PATCH", &instance, Some(json!({"token_ttl_seconds": 120})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(with_secret().await.body["expires_in"], json!(120));

    // A moves the domain key to another domain: B refuses the old one.
    let reply = a
        .admin(
            "PATCH",
            &format!("{instance}/domain-keys/{key_id}"),
            Some(json!({"domains": ["shop.example.net"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    with_key("https://example.com")
        .await
        .assert_error(403, "origin_not_allowed");
    assert_eq!(with_key("https://shop.example.net").await.status, 200);

    // A rotates the secret with no grace: B refuses the old one.
    let reply = a
        .admin(
            "POST",
            &format!("{instance}/secrets/{}/rotate", created.secret_id),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    with_secret().await.assert_error(401, "invalid_credentials");

    // A deletes the instance: B refuses the domain key.
    assert_eq!(a.admin("DELETE", &instance, None).await.status, 204);
    with_key("https://shop.example.net")
        .await
        .assert_error(401, "invalid_credentials");
}

/// `/v1/apis` and `/v1/refreshToken` on a second process that has served the
/// instance before (and so holds it in its cache) answer from its current
/// configuration after every change made through the first process.
async fn a_warm_second_process_serves_apis_and_refresh_from_current_configuration(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let b = a.spawn_peer().await;
    let (created, token) = a.server_token().await;
    for _ in 0..2 {
        let reply = b.apis(&created.api_key, &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.body["apis"]["chat"].is_string(), "{}", reply.text);
    }
    let instance = format!("/admin/v1/instances/{}", created.id);

    let reply = a
        .admin(
            "PATCH",
            &instance,
            Some(json!({
                "products": {"search": {"upstream": "http://127.0.0.1:9/search"}},
                "token_ttl_seconds": 120,
            })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = b.apis(&created.api_key, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let products: Vec<&String> = reply.body["apis"].as_object().unwrap().keys().collect();
    assert_eq!(products, ["search"]);
    let reply = b.refresh(&created.api_key, &token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["expires_in"], json!(120));

    assert_eq!(a.admin("DELETE", &instance, None).await.status, 204);
    b.apis(&created.api_key, &token)
        .await
        .assert_error(401, "invalid_credentials");
}
