//! Revocation in one process: by token, session, credential and instance, by
//! deleting or rotating a secret, by logout; and the store keeping nothing
//! longer than it must.

use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, spawn_app, Backend};

async fn deleting_the_instance_stops_its_tokens_at_once(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    // Warm the gateway's caches first.
    assert_eq!(
        w.call("/prod/search/v1/search", w.token()).await.status,
        200
    );
    let path = format!("/admin/v1/instances/{}", w.created.id);
    assert_eq!(w.app.admin("DELETE", &path, None).await.status, 204);
    w.token_refused_everywhere("/search/v1/search", 401, "invalid_credentials")
        .await;
}

async fn revocation_by_jti_sid_credential_and_instance(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = "/prod/search/v1/search";
    let revoke = |body: Value| {
        let app = &w.app;
        let id = w.created.id.clone();
        async move {
            let reply = app
                .admin(
                    "POST",
                    &format!("/admin/v1/instances/{id}/revoke-tokens"),
                    Some(body),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
    };
    let fresh = || async {
        let reply = w
            .app
            .auth_with_secret(&w.created.api_key, &w.created.secret)
            .await;
        reply.body["accessToken"].as_str().unwrap().to_owned()
    };

    // By jti: only that token.
    let (a, b) = (fresh().await, fresh().await);
    revoke(json!({"jti": claims_of(&a)["jti"]})).await;
    let before = w.upstream.hits();
    w.refused(&w.call(path, &a).await, 401, "token_revoked", before);
    assert_eq!(w.call(path, &b).await.status, 200);

    // By sid: the whole refresh family, successors included.
    let c = fresh().await;
    let successor = w.app.refresh(&w.created.api_key, &c, None).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    revoke(json!({"sid": claims_of(&c)["sid"]})).await;
    let before = w.upstream.hits();
    w.refused(&w.call(path, &c).await, 401, "token_revoked", before);
    w.refused(
        &w.call(path, &successor).await,
        401,
        "token_revoked",
        before,
    );
    w.app
        .refresh(&w.created.api_key, &successor, None)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(w.call(path, &b).await.status, 200);

    // By instance: everything issued until now; new tokens work (a second later).
    revoke(json!({})).await;
    let before = w.upstream.hits();
    w.refused(&w.call(path, &b).await, 401, "token_revoked", before);
    w.refused(&w.call(path, w.token()).await, 401, "token_revoked", before);
    w.app.clock.advance(1);
    let d = fresh().await;
    assert_eq!(w.call(path, &d).await.status, 200);

    // Other instances are untouched.
    let (other, other_token) = w.app.server_token().await;
    let other_reply = w
        .call_from("/prod/search/x", &other_token, &other.api_key, None)
        .await;
    assert_ne!(other_reply.status, 401, "{}", other_reply.text);

    // Bad requests change nothing.
    for body in [
        json!({"jti": "a", "sid": "b"}),
        json!({"jti": ""}),
        json!({"jti": "a b"}),
        json!({"kind": "all"}),
    ] {
        let reply = w
            .app
            .admin(
                "POST",
                &format!("/admin/v1/instances/{}/revoke-tokens", w.created.id),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
    }
    assert_eq!(w.call(path, &d).await.status, 200);
}

async fn deleting_a_secret_kills_its_tokens_everywhere(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        w.created.id, w.created.secret_id
    );
    // A second secret, so introspection can still authenticate.
    let second = w
        .app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/secrets", w.created.id),
            None,
        )
        .await;
    let second_secret = second.body["value"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(w.token()).await.body["active"], json!(true));
    assert_eq!(w.app.admin("DELETE", &path, None).await.status, 200);

    w.token_refused_everywhere("/prod/search/v1/search", 401, "token_revoked")
        .await;
    w.app
        .refresh(&w.created.api_key, w.token(), None)
        .await
        .assert_error(401, "token_revoked");
    let reply = w.introspect_as(w.token(), &second_secret).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"active": false}));
}

async fn rotation_grace_keeps_tokens_until_it_ends(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}/rotate",
        w.created.id, w.created.secret_id
    );
    let reply = w
        .app
        .admin("POST", &path, Some(json!({"grace_seconds": 60})))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        w.call("/prod/search/v1/search", w.token()).await.status,
        200
    );
    w.app.clock.advance(60);
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", w.token()).await,
        401,
        "token_revoked",
        before,
    );
}

async fn logout_revokes_the_token_and_its_session(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let successor = w
        .app
        .refresh(&w.created.api_key, w.token(), None)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |token: String| {
        let request = w
            .app
            .client
            .post(w.app.url("/v1/revoke"))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(token);
        w.app.send(request, None)
    };
    let reply = revoke(w.token().to_owned()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", w.token()).await,
        401,
        "token_revoked",
        before,
    );
    w.refused(
        &w.call("/prod/search/v1/search", &successor).await,
        401,
        "token_revoked",
        before,
    );
    // Again, and with garbage: still 200, telling nothing.
    assert_eq!(revoke(w.token().to_owned()).await.status, 200);
    assert_eq!(revoke("garbage".into()).await.status, 200);
}

async fn refresh_reuse_window_returns_one_successor(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let first = w.app.refresh(&w.created.api_key, w.token(), None).await;
    let second = w.app.refresh(&w.created.api_key, w.token(), None).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body["accessToken"], second.body["accessToken"],
        "two tabs, one successor"
    );
    // Both tabs' tokens work.
    let successor = first.body["accessToken"].as_str().unwrap();
    assert_eq!(w.call("/prod/search/x", successor).await.status, 200);
    assert_ne!(claims_of(successor)["jti"], claims_of(w.token())["jti"]);

    // The store keeps no bearer token, and a revoked successor is not handed out.
    if w.app.backend != Backend::Memory {
        let redis = w.app.redis();
        let keys = redis.command(&["KEYS", &format!("{}:*succ*", w.app.key_prefix())]);
        for key in keys.lines().filter(|k| k.contains(":succ:")) {
            let value = redis.command(&["GET", key]);
            assert!(
                !value.contains(successor) && !value.contains("eyJ"),
                "{value}"
            );
        }
    }
    let revoke = w
        .app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/revoke-tokens", w.created.id),
            Some(json!({"jti": claims_of(successor)["jti"]})),
        )
        .await;
    assert_eq!(revoke.status, 200);
    w.app
        .refresh(&w.created.api_key, w.token(), None)
        .await
        .assert_error(401, "token_revoked");
}

every_backend!(
    deleting_the_instance_stops_its_tokens_at_once,
    revocation_by_jti_sid_credential_and_instance,
    deleting_a_secret_kills_its_tokens_everywhere,
    rotation_grace_keeps_tokens_until_it_ends,
    logout_revokes_the_token_and_its_session,
    refresh_reuse_window_returns_one_successor;
    shared:
    revocation_keys_expire,
);

/// Every key revocation writes carries a TTL no longer than it needs.
async fn revocation_keys_expire(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let admin_path = format!("/admin/v1/instances/{}/revoke-tokens", w.created.id);
    let claims = claims_of(w.token());
    for body in [
        json!({"jti": claims["jti"]}),
        json!({"sid": claims["sid"]}),
        json!({}),
    ] {
        assert_eq!(
            w.app.admin("POST", &admin_path, Some(body)).await.status,
            200
        );
    }
    // Logout of a fresh token writes jti and sid entries bounded by its own life.
    w.app.clock.advance(1);
    let token = w.fresh_token().await;
    w.app.refresh(&w.created.api_key, &token, None).await;
    let request = w
        .app
        .client
        .post(w.app.url("/v1/revoke"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(&token);
    w.app.send(request, None).await;
    let secret_path = format!(
        "/admin/v1/instances/{}/secrets/{}",
        w.created.id, w.created.secret_id
    );
    w.app.admin("DELETE", &secret_path, None).await;

    let redis = w.app.redis();
    let keys = redis.command(&["KEYS", &format!("{}:*", w.app.key_prefix())]);
    let short_lived: Vec<&str> = keys
        .lines()
        .filter(|k| k.contains(":rev:") || k.contains(":succ:"))
        .collect();
    for kind in [":rev:jti:", ":rev:sid:", ":rev:cred:", ":rev:all", ":succ:"] {
        assert!(
            short_lived.iter().any(|k| k.contains(kind)),
            "no {kind} key in {keys}"
        );
    }
    let new_jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();
    for key in short_lived {
        let ttl: i64 = redis
            .command(&["TTL", key])
            .trim_start_matches(':')
            .trim()
            .parse()
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        let bound = if key.contains(":succ:") {
            10
        } else if key.contains(&new_jti) {
            1200 + 30 + 2
        } else {
            86_400 + 30 + 2
        };
        assert!(ttl <= bound, "{key} lives {ttl}s, more than {bound}s");
    }
}
