//! The admin API: who may call it, and what it shows of credentials.

use serde_json::{json, Value};

use crate::every_backend;
use crate::helpers::{spawn_app, spawn_app_with, Backend, PEPPER};

async fn admin_routes_need_the_admin_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, token) = app.server_token().await;
    let url = app.url("/admin/v1/instances");

    let reply = app.send(app.client.get(&url), None).await;
    reply.assert_error(401, "admin_auth_required");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    let reply = app
        .send(app.client.get(&url).bearer_auth("x".repeat(40)), None)
        .await;
    reply.assert_error(401, "invalid_admin_token");

    // Access tokens and generated credentials: 403, always.
    for credential in [
        token.as_str(),
        created.secret.as_str(),
        created.api_key.as_str(),
    ] {
        let reply = app
            .send(app.client.get(&url).bearer_auth(credential), None)
            .await;
        reply.assert_error(403, "admin_token_required");
        let reply = app
            .send(
                app.client
                    .delete(app.url(&format!("/admin/v1/instances/{}", created.id)))
                    .bearer_auth(credential),
                None,
            )
            .await;
        assert_eq!(reply.status, 403);
    }
    // Nothing was deleted.
    let reply = app
        .admin("GET", &format!("/admin/v1/instances/{}", created.id), None)
        .await;
    assert_eq!(reply.status, 200);
}

async fn instance_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let body = &created.body;
    for field in [
        "id",
        "name",
        "api_key",
        "products",
        "token_ttl_seconds",
        "created_at",
        "secret",
    ] {
        assert!(body.get(field).is_some(), "missing {field} in {body}");
    }
    assert!(created.api_key.starts_with("kb_pk_"));
    assert!(created.secret.starts_with("kb_sk_"));
    assert_eq!(body["token_ttl_seconds"], json!(1200));
    assert_eq!(body["secret"]["status"], json!("active"));
    assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());

    let path = format!("/admin/v1/instances/{}", created.id);
    let got = app.admin("GET", &path, None).await;
    assert_eq!(got.status, 200);
    assert!(
        got.body.get("secret").is_none(),
        "the secret is shown once only"
    );
    assert!(!got.text.contains(&created.secret));

    let list = app.admin("GET", "/admin/v1/instances", None).await;
    assert_eq!(list.body["instances"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(&created.secret));

    let patched = app
        .admin(
            "PATCH",
            &path,
            Some(json!({"name": "Renamed", "token_ttl_seconds": 600, "products": {"kb": {"upstream": "https://kb.example.com/api"}}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["name"], json!("Renamed"));
    assert_eq!(patched.body["token_ttl_seconds"], json!(600));
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.body["expires_in"], json!(600));
    assert_eq!(reply.body["apis"], json!({"kb": app.url("/prod/kb")}));

    assert_eq!(app.admin("DELETE", &path, None).await.status, 204);
    app.admin("GET", &path, None)
        .await
        .assert_error(404, "not_found");
    app.admin("DELETE", &path, None)
        .await
        .assert_error(404, "not_found");
    app.auth_with_secret(&created.api_key, &created.secret)
        .await
        .assert_error(401, "invalid_credentials");
}

async fn secrets_are_shown_once_then_masked(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let path = format!("/admin/v1/instances/{}/secrets", created.id);
    let added = app.admin("POST", &path, None).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let value = added.body["value"].as_str().unwrap().to_owned();
    for field in ["id", "masked", "status", "created_at", "last_used_at"] {
        assert!(added.body.get(field).is_some(), "missing {field}");
    }

    // Use it so last_used_at moves.
    assert_eq!(
        app.auth_with_secret(&created.api_key, &value).await.status,
        200
    );

    let list = app.admin("GET", &path, None).await;
    let secrets = list.body["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    let added_id = added.body["id"].as_str().unwrap();
    for secret in secrets {
        let is_added = secret["id"] == json!(added_id);
        let full = if is_added { &value } else { &created.secret };
        assert!(secret.get("value").is_none());
        let masked = secret["masked"].as_str().unwrap();
        assert_eq!(masked.chars().count(), 21, "10 + … + 10");
        assert_eq!(&masked[..10], &full[..10]);
        assert!(masked.ends_with(&full[full.len() - 10..]));
        assert!(!list.text.contains(full.as_str()));
        // Only the one that was used has a last_used_at.
        assert_eq!(secret["last_used_at"].is_string(), is_added);
    }
}

async fn rotation_keeps_the_old_secret_for_the_grace(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}/rotate",
        created.id, created.secret_id
    );
    let reply = app
        .admin("POST", &path, Some(json!({"grace_seconds": 60})))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let new_secret = reply.body["value"].as_str().unwrap().to_owned();
    assert_eq!(reply.body["previous"]["status"], json!("expiring"));

    assert_eq!(
        app.auth_with_secret(&created.api_key, &created.secret)
            .await
            .status,
        200
    );
    assert_eq!(
        app.auth_with_secret(&created.api_key, &new_secret)
            .await
            .status,
        200
    );
    app.clock.advance(61);
    app.auth_with_secret(&created.api_key, &created.secret)
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(
        app.auth_with_secret(&created.api_key, &new_secret)
            .await
            .status,
        200
    );

    // Rotation with no grace kills the old secret at once.
    let new_id = reply.body["id"].as_str().unwrap();
    let path = format!("/admin/v1/instances/{}/secrets/{new_id}/rotate", created.id);
    let reply = app.admin("POST", &path, Some(json!({}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["previous"]["status"], json!("revoked"));
    app.auth_with_secret(&created.api_key, &new_secret)
        .await
        .assert_error(401, "invalid_credentials");
}

async fn a_revoked_secret_cannot_be_rotated(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let secret = format!(
        "/admin/v1/instances/{}/secrets/{}",
        created.id, created.secret_id
    );
    let reply = app.admin("DELETE", &secret, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let list = format!("/admin/v1/instances/{}/secrets", created.id);
    let before = app.admin("GET", &list, None).await.body;

    app.admin("POST", &format!("{secret}/rotate"), Some(json!({})))
        .await
        .assert_error(409, "already_revoked");
    // Nothing was issued.
    assert_eq!(app.admin("GET", &list, None).await.body, before);
}

/// A wildcard over a public suffix would allow every site registered under
/// it: refused for domain keys and for experiences' allowed origins.
async fn public_suffix_wildcards_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let keys = format!("/admin/v1/instances/{}/domain-keys", created.id);
    for domain in ["*.co.uk", "*.github.io"] {
        app.admin("POST", &keys, Some(json!({ "domains": [domain] })))
            .await
            .assert_error(400, "invalid_domain");
    }
    let reply = app
        .admin("POST", &keys, Some(json!({ "domains": ["*.shop.co.uk"] })))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let experiences = format!("/admin/v1/instances/{}/experiences", created.id);
    app.admin(
        "POST",
        &experiences,
        Some(json!({
            "slug": "search",
            "upstream": "http://127.0.0.1:9/search",
            "allowed_origins": ["https://*.github.io"],
        })),
    )
    .await
    .assert_error(400, "invalid_request");
    let listed = app.admin("GET", &keys, None).await;
    assert_eq!(listed.body["domain_keys"].as_array().unwrap().len(), 1);
}

async fn domain_keys_report_their_status(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 120).await;
    let created = app.create_instance().await;
    let (id, value, body) = app
        .add_domain_key(&created.id, &["Example.com", "*.example.org:8443"])
        .await;
    assert!(value.starts_with("kb_dk_"));
    assert_eq!(
        body["domains"],
        json!(["example.com", "*.example.org:8443"])
    );
    let created_at =
        chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
    let active_at =
        chrono::DateTime::parse_from_rfc3339(body["active_at"].as_str().unwrap()).unwrap();
    assert_eq!((active_at - created_at).num_seconds(), 120);

    let path = format!("/admin/v1/instances/{}/domain-keys", created.id);
    let status = |list: &Value| list["domain_keys"][0]["status"].clone();
    let list = app.admin("GET", &path, None).await;
    assert_eq!(status(&list.body), json!("pending"));
    assert!(!list.text.contains(&value));
    app.clock.advance(120);
    assert_eq!(
        status(&app.admin("GET", &path, None).await.body),
        json!("active")
    );
    app.admin("DELETE", &format!("{path}/{id}"), None).await;
    assert_eq!(
        status(&app.admin("GET", &path, None).await.body),
        json!("revoked")
    );
}

async fn bad_admin_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let path = format!("/admin/v1/instances/{}", created.id);
    let before = app.admin("GET", &path, None).await.body;

    let cases = [
        (
            "POST",
            "/admin/v1/instances".to_owned(),
            json!({"name": ""}),
            "invalid_request",
        ),
        (
            "POST",
            "/admin/v1/instances".to_owned(),
            json!({"name": "x", "products": {"Bad Slug": {"upstream": "http://a"}}}),
            "invalid_request",
        ),
        (
            "POST",
            "/admin/v1/instances".to_owned(),
            json!({"name": "x", "products": {"s": {"upstream": "ftp://a"}}}),
            "invalid_request",
        ),
        (
            "POST",
            "/admin/v1/instances".to_owned(),
            json!({"name": "x", "token_ttl_seconds": 5}),
            "invalid_request",
        ),
        (
            "POST",
            "/admin/v1/instances".to_owned(),
            json!({"name": "x", "surprise": 1}),
            "invalid_json",
        ),
        (
            "PATCH",
            path.clone(),
            json!({"token_ttl_seconds": 999999}),
            "invalid_request",
        ),
        (
            "PATCH",
            path.clone(),
            json!({"name": "ok", "products": {"s": {"upstream": "nope"}}}),
            "invalid_request",
        ),
        ("PATCH", path.clone(), json!({"name": 5}), "invalid_json"),
        (
            "POST",
            format!("{path}/domain-keys"),
            json!({"domains": []}),
            "invalid_domain",
        ),
        (
            "POST",
            format!("{path}/domain-keys"),
            json!({"domains": ["*.com"]}),
            "invalid_domain",
        ),
        (
            "POST",
            format!("{path}/domain-keys"),
            json!({"domains": ["https://example.com"]}),
            "invalid_domain",
        ),
        (
            "POST",
            format!("{path}/secrets/{}/rotate", created.secret_id),
            json!({"grace_seconds": -1}),
            "invalid_json",
        ),
    ];
    for (method, url, body, reason) in cases {
        let reply = app.admin(method, &url, Some(body.clone())).await;
        assert_eq!(reply.status, 400, "{method} {url} {body}: {}", reply.text);
        assert_eq!(reply.reason(), reason, "{method} {url} {body}");
    }
    assert_eq!(app.admin("GET", &path, None).await.body, before);
    let list = app.admin("GET", "/admin/v1/instances", None).await;
    assert_eq!(list.body["instances"].as_array().unwrap().len(), 1);
    let keys = app.admin("GET", &format!("{path}/domain-keys"), None).await;
    assert_eq!(keys.body["domain_keys"], json!([]));
    let secrets = app.admin("GET", &format!("{path}/secrets"), None).await;
    assert_eq!(secrets.body["secrets"].as_array().unwrap().len(), 1);

    app.admin("GET", "/admin/v1/instances/ins_nope", None)
        .await
        .assert_error(404, "not_found");
    app.admin("DELETE", &format!("{path}/secrets/sk_nope"), None)
        .await
        .assert_error(404, "not_found");
}

every_backend!(
    admin_routes_need_the_admin_token,
    instance_lifecycle,
    secrets_are_shown_once_then_masked,
    rotation_keeps_the_old_secret_for_the_grace,
    a_revoked_secret_cannot_be_rotated,
    public_suffix_wildcards_are_refused,
    domain_keys_report_their_status,
    bad_admin_input_is_refused_and_changes_nothing;
    shared:
    redis_stores_only_hashes_of_credentials,
    two_processes_on_one_redis_share_credentials,
);

/// Redis holds hashes and masks, never a secret or domain key value.
async fn redis_stores_only_hashes_of_credentials(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let created = app.create_instance().await;
    let (_, domain_key, _) = app.add_domain_key(&created.id, &["example.com"]).await;
    let redis = app.redis();
    let prefix = format!("{}:", app.key_prefix());
    let keys = redis.command(&["KEYS", &format!("{prefix}*")]);
    let mut everything = keys.clone();
    for key in keys.lines().filter(|l| l.starts_with(&prefix)) {
        let kind = redis.command(&["TYPE", key]);
        let dump = if kind.contains("hash") {
            redis.command(&["HGETALL", key])
        } else if kind.contains("zset") {
            redis.command(&["ZRANGE", key, "0", "-1"])
        } else {
            redis.command(&["GET", key])
        };
        everything.push_str(&dump);
    }
    assert!(
        everything.contains(&created.id),
        "the dump covers the instance"
    );
    assert!(
        everything.contains(&created.api_key),
        "API keys are public identifiers"
    );
    for value in [&created.secret, &domain_key] {
        assert!(
            !everything.contains(value.as_str()),
            "a credential value is stored in Redis"
        );
        // Not even the random part without its prefix.
        assert!(!everything.contains(&value[6..40]));
    }
    assert!(!everything.contains(PEPPER));
}

/// Two broker processes on one Redis share every credential and revocation.
async fn two_processes_on_one_redis_share_credentials(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = a.spawn_peer().await;
    let created = a.create_instance().await;
    let reply = b.auth_with_secret(&created.api_key, &created.secret).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(a.refresh(&created.api_key, &token, None).await.status, 200);

    let path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        created.id, created.secret_id
    );
    assert_eq!(a.admin("DELETE", &path, None).await.status, 200);
    b.refresh(&created.api_key, &token, None)
        .await
        .assert_error(401, "token_revoked");
    b.auth_with_secret(&created.api_key, &created.secret)
        .await
        .assert_error(401, "invalid_credentials");

    // B keeps serving when A is gone.
    a.stop().await;
    let secret = b
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/secrets", created.id),
            None,
        )
        .await;
    let value = secret.body["value"].as_str().unwrap();
    assert_eq!(
        b.auth_with_secret(&created.api_key, value).await.status,
        200
    );
}
