//! Corrupt data in Redis (written here with a raw client, as a bad restore, a
//! hand edit or another program might): a revocation value that is not a
//! number fails the request closed with `503 store_unavailable`, never reads
//! as "not revoked".

use std::collections::BTreeSet;

use serde_json::json;

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, spawn_app, Backend, Reply, TestApp};

/// Values that are not what the broker writes (whole, non-negative numbers).
const GARBAGE: [&str; 3] = ["not-a-number", "-1", "1e3"];

#[track_caller]
fn assert_fails_closed(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.text);
    reply.assert_error(503, "store_unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"), "{what}");
}

/// The four revocation keys that could name this access token.
fn revocation_keys(app: &TestApp, token: &str) -> [(&'static str, String); 4] {
    let p = app.key_prefix();
    let claims = claims_of(token);
    let (ins, jti, sid, cred) = (
        claims["sub"].as_str().unwrap().to_owned(),
        claims["jti"].as_str().unwrap().to_owned(),
        claims["sid"].as_str().unwrap().to_owned(),
        claims["cred"].as_str().unwrap().to_owned(),
    );
    [
        ("jti", format!("{p}:{{{ins}}}:rev:jti:{jti}")),
        ("sid", format!("{p}:{{{ins}}}:rev:sid:{sid}")),
        ("cred", format!("{p}:{{{ins}}}:rev:cred:{cred}")),
        ("all", format!("{p}:{{{ins}}}:rev:all")),
    ]
}

async fn fresh_token(w: &Fixture) -> String {
    let reply = w
        .app
        .auth_with_secret(&w.created.api_key, &w.created.secret)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["accessToken"].as_str().unwrap().to_owned()
}

async fn garbage_in_a_revocation_list_fails_product_requests_closed(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = "/prod/search/v1/search";
    for garbage in GARBAGE {
        for index in 0..4 {
            let token = fresh_token(&w).await;
            // Warm every cache with a good answer first.
            assert_eq!(w.call(path, &token).await.status, 200);
            let (list, key) = &revocation_keys(&w.app, &token)[index];
            let what = format!("rev:{list} = {garbage:?}");
            w.app.redis().command(&["SET", key, garbage, "EX", "600"]);

            let before = w.upstream.hits();
            assert_fails_closed(&w.call(path, &token).await, &what);
            assert_eq!(
                w.upstream.hits(),
                before,
                "{what}: the upstream was reached"
            );
            assert_fails_closed(&w.verify("/search/v1/search", &token).await, &what);

            // The token itself was fine: without the garbage it works again.
            w.app.redis().command(&["DEL", key]);
            assert_eq!(w.call(path, &token).await.status, 200, "{what}");
        }
    }
}

async fn garbage_in_a_revocation_list_fails_apis_refresh_and_introspect_closed(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    for garbage in GARBAGE {
        for index in 0..4 {
            let token = fresh_token(&w).await;
            let (list, key) = &revocation_keys(&w.app, &token)[index];
            let what = format!("rev:{list} = {garbage:?}");
            w.app.redis().command(&["SET", key, garbage, "EX", "600"]);

            assert_fails_closed(&w.app.apis(&w.created.api_key, &token).await, &what);
            assert_fails_closed(
                &w.app.refresh(&w.created.api_key, &token, None).await,
                &what,
            );
            assert_fails_closed(&w.introspect(&token).await, &what);

            w.app.redis().command(&["DEL", key]);
            let apis = w.app.apis(&w.created.api_key, &token).await;
            assert_eq!(apis.status, 200, "{what}: {}", apis.text);
        }
    }
}

/// `/v1/verify` with an experience token in `X-Access-Token`.
async fn verify_xt(w: &Fixture, token: &str) -> Reply {
    let request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-original-uri", "/search/v1/search"))
        .insert_header(("x-access-token", token));
    w.app.send(request, None).await
}

async fn garbage_in_an_experience_tokens_times_fails_closed(backend: Backend) {
    let w = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = w
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let credential_id = body["token"]["id"].as_str().unwrap();
    let key = format!(
        "{}:{{{}}}:cred:{credential_id}",
        w.app.key_prefix(),
        w.created.id
    );
    let path = "/prod/search/v1/search";
    assert_eq!(w.get_xt(path, &token).await.status, 200);
    assert_eq!(verify_xt(&w, &token).await.status, 200);

    for field in ["revoked_at", "expires_at"] {
        for garbage in GARBAGE {
            let what = format!("{field} = {garbage:?}");
            w.app.redis().command(&["HSET", &key, field, garbage]);

            let before = w.upstream.hits();
            assert_fails_closed(&w.get_xt(path, &token).await, &what);
            assert_eq!(
                w.upstream.hits(),
                before,
                "{what}: the upstream was reached"
            );
            assert_fails_closed(&verify_xt(&w, &token).await, &what);
            // A process that has not cached the credential reads it whole.
            let peer = w.app.spawn_peer().await;
            let request = peer
                .client
                .get(peer.url(path))
                .insert_header(("x-access-token", token.as_str()));
            assert_fails_closed(&peer.send(request, None).await, &what);
            peer.stop().await;

            w.app.redis().command(&["HDEL", &key, field]);
            assert_eq!(w.get_xt(path, &token).await.status, 200, "{what}");
        }
    }
}

/// Recording a revocation over a corrupt value replaces it: the revocation
/// holds, and the key is repaired.
async fn a_revocation_recorded_over_garbage_replaces_it(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = "/prod/search/v1/search";
    let token = fresh_token(&w).await;
    let other = fresh_token(&w).await;
    let keys = revocation_keys(&w.app, &token);
    for (_, key) in &keys {
        w.app.redis().command(&["SET", key, "garbage", "EX", "600"]);
    }
    let revoke = format!("/admin/v1/instances/{}/revoke-tokens", w.created.id);
    let reply = w
        .app
        .admin(
            "POST",
            &revoke,
            Some(json!({"jti": claims_of(&token)["jti"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = w
        .app
        .admin(
            "POST",
            &revoke,
            Some(json!({"sid": claims_of(&token)["sid"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = w.app.admin("POST", &revoke, Some(json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let secret = format!(
        "/admin/v1/instances/{}/secrets/{}",
        w.created.id, w.created.secret_id
    );
    let reply = w.app.admin("DELETE", &secret, None).await;
    assert!(reply.status < 300, "{}", reply.text);

    for (list, key) in &keys {
        let value = w.app.redis().command(&["GET", key]);
        assert!(
            !value.contains("garbage"),
            "rev:{list} still holds garbage: {value}"
        );
    }
    w.call(path, &token)
        .await
        .assert_error(401, "token_revoked");
    w.call(path, &other)
        .await
        .assert_error(401, "token_revoked");
}

/// The `/v1/auth` preflight for `origin`, from `app`.
async fn auth_preflight(app: &TestApp, origin: &str) -> Reply {
    let request = app
        .client
        .request(awc::http::Method::OPTIONS, app.url("/v1/auth"))
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", "POST"));
    app.send(request, None).await
}

/// One instance record that is not JSON does not take the others down: CORS
/// preflights (whose origin index is built from the list of instances) and
/// the admin list still answer for the healthy ones, in processes that start
/// cold and in one whose index was built before the record broke.
async fn one_corrupt_instance_record_is_skipped_by_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let broken = app.create_instance().await;
    let healthy = app.create_instance().await;
    let other = app.create_instance().await;
    app.add_domain_key(&broken.id, &["broken.example.com"])
        .await;
    app.add_domain_key(&healthy.id, &["healthy.example.com"])
        .await;
    app.add_domain_key(&other.id, &["other.example.com"]).await;
    assert_eq!(
        auth_preflight(&app, "https://healthy.example.com")
            .await
            .status,
        204
    );

    app.redis().command(&[
        "SET",
        &format!("{}:{{{}}}:instance", app.key_prefix(), broken.id),
        "{\"id\": \"garbled",
    ]);

    for process in [app.spawn_peer().await, app.spawn_peer().await] {
        for _ in 0..3 {
            for origin in ["https://healthy.example.com", "https://other.example.com"] {
                let reply = auth_preflight(&process, origin).await;
                assert_eq!(reply.status, 204, "{origin}: {}", reply.text);
            }
            let list = process.admin("GET", "/admin/v1/instances", None).await;
            assert_eq!(list.status, 200, "{}", list.text);
            let ids: BTreeSet<&str> = list.body["instances"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap())
                .collect();
            let expected = BTreeSet::from([healthy.id.as_str(), other.id.as_str()]);
            assert_eq!(ids, expected, "{}", list.text);
        }
        // The corrupt instance itself fails closed when read by id.
        let one = process
            .admin("GET", &format!("/admin/v1/instances/{}", broken.id), None)
            .await;
        assert_fails_closed(&one, "the corrupt instance");
        process.stop().await;
    }
    let reply = auth_preflight(&app, "https://other.example.com").await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

every_backend!(;
    shared:
    garbage_in_a_revocation_list_fails_product_requests_closed,
    garbage_in_a_revocation_list_fails_apis_refresh_and_introspect_closed,
    garbage_in_an_experience_tokens_times_fails_closed,
    a_revocation_recorded_over_garbage_replaces_it,
    one_corrupt_instance_record_is_skipped_by_lists,
);
