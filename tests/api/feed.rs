//! Several broker processes on one Redis: every change and revocation made
//! through one holds on the others at once, through the revocation feed or,
//! when the feed is cut or silent, by reading Redis; and while Redis is down
//! the gateway fails closed.

use serde_json::json;

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, spawn_app, Backend, TestApp};
use crate::redis_server::RedisServer;

/// Revocation through one broker process is honoured by another on the very
/// next request.
async fn a_revocation_through_one_process_holds_on_another(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let peer = w.app.spawn_peer().await;
    let call_b = |token: &str| {
        let request = peer
            .client
            .get(peer.url("/prod/search/v1/search"))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(token);
        peer.send(request, None)
    };
    assert_eq!(call_b(w.token()).await.status, 200);
    let jti = claims_of(w.token())["jti"].clone();
    let reply = w
        .app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/revoke-tokens", w.created.id),
            Some(json!({"jti": jti})),
        )
        .await;
    assert_eq!(reply.status, 200);
    let before = w.upstream.hits();
    w.refused(&call_b(w.token()).await, 401, "token_revoked", before);
}

/// Redis down while serving: the gateway and forward-auth fail closed with
/// 503 and recover by themselves when Redis is back.
///
/// One node only: a cluster has no single Redis to stop and restart; its
/// counterpart is the failover test in `cluster.rs`.
#[actix_web::test]
async fn gateway_fails_closed_while_redis_is_down() {
    let redis = std::sync::Arc::new(std::sync::Mutex::new(RedisServer::start_persistent()));
    let app = crate::helpers::spawn_app_on_redis(redis.clone()).await;
    let w = Fixture::with_products(app).await;
    assert_eq!(
        w.call("/prod/search/v1/search", w.token()).await.status,
        200
    );

    redis.lock().unwrap().stop();
    w.token_refused_everywhere("/search/v1/search", 503, "store_unavailable")
        .await;

    redis.lock().unwrap().restart();
    let mut status = 0;
    for _ in 0..50 {
        status = w.call("/prod/search/v1/search", w.token()).await.status;
        if status == 200 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "the gateway did not recover after Redis came back"
    );
    assert_eq!(w.verify("/search/v1/search", w.token()).await.status, 200);
}

/// The fast path keeps per-process caches; a second process with warm caches
/// must still see every change made through the first on its very next request.
async fn a_warm_second_process_sees_every_change_at_once(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let b = w.app.spawn_peer().await;
    let on_b = |path: &str, token: &str| {
        let request = b
            .client
            .get(b.url(path))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(token);
        b.send(request, None)
    };
    // Warm B's caches.
    for _ in 0..3 {
        assert_eq!(on_b("/prod/search/v1/search", w.token()).await.status, 200);
    }
    let instance = format!("/admin/v1/instances/{}", w.created.id);

    // A lowers the limit to 1 per minute: B applies it at once.
    let reply = w
        .app
        .admin(
            "PATCH",
            &format!("{instance}/experiences/search"),
            Some(json!({"rate_limit_per_minute": 1})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    on_b("/prod/search/v1/search", w.token())
        .await
        .assert_error(429, "rate_limited");

    // A removes the product: B refuses it at once.
    let reply = w
        .app
        .admin(
            "PATCH",
            &instance,
            Some(json!({"products": {"chat": {"upstream": format!("{}/chat", w.upstream.base)}}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    on_b("/prod/search/v1/search", w.token())
        .await
        .assert_error(404, "unknown_product");
    assert_eq!(on_b("/prod/chat/v1/chat", w.token()).await.status, 200);

    // A revokes every token of the instance: B refuses at once.
    w.app
        .admin(
            "POST",
            &format!("{instance}/revoke-tokens"),
            Some(json!({})),
        )
        .await;
    on_b("/prod/chat/v1/chat", w.token())
        .await
        .assert_error(401, "token_revoked");

    // A regenerates an experience token: B refuses the old one at once.
    let created = w
        .app
        .admin(
            "POST",
            &format!("{instance}/experiences"),
            Some(json!({"slug": "kb", "kind": "search", "upstream": format!("{}/kb", w.upstream.base)})),
        )
        .await;
    let old = created.body["token"]["value"].as_str().unwrap().to_owned();
    let with_xt = |token: String| {
        let request = b
            .client
            .get(b.url("/prod/kb/v1/search"))
            .insert_header(("x-access-token", token));
        b.send(request, None)
    };
    assert_eq!(with_xt(old.clone()).await.status, 200);
    w.app
        .admin(
            "POST",
            &format!("{instance}/experiences/kb/regenerate-token"),
            Some(json!({})),
        )
        .await;
    with_xt(old).await.assert_error(401, "token_revoked");

    // A deletes the instance: B refuses its API key at once.
    w.app.clock.advance(1);
    let fresh = w.fresh_token().await;
    assert_eq!(on_b("/prod/chat/v1/chat", &fresh).await.status, 200);
    assert_eq!(w.app.admin("DELETE", &instance, None).await.status, 204);
    on_b("/prod/chat/v1/chat", &fresh)
        .await
        .assert_error(401, "invalid_credentials");
}

/// A value of the app's Prometheus metrics.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let reply = app.get("/metrics").await;
    reply
        .text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{}", reply.text))
}

/// Waits until the app's revocation feed is up (`true`) or down.
pub(crate) async fn feed_is(app: &TestApp, up: bool) {
    let want = u64::from(up);
    // Coming back after an outage can take a reconnection attempt's timeout
    // plus a backoff of up to a second.
    for _ in 0..500 {
        if metric(app, "keybroker_revocation_feed_up").await == want {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "the revocation feed did not become {}",
        if up { "up" } else { "down" }
    );
}

async fn revoke_jti(w: &Fixture, token: &str) {
    let reply = w
        .app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/revoke-tokens", w.created.id),
            Some(json!({"jti": claims_of(token)["jti"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// Process B on A's Redis, whose revocation view holds `w.token()` as not
/// revoked (and is seen to answer from it).
pub(crate) async fn peer_with_a_warm_view(w: &Fixture) -> TestApp {
    let b = w.app.spawn_peer().await;
    feed_is(&b, true).await;
    for _ in 0..3 {
        let reply = w.introspect_on(&b, w.token(), &w.created.secret).await;
        assert_eq!(reply.body["active"], true, "{}", reply.text);
        assert_eq!(b.apis(&w.created.api_key, w.token()).await.status, 200);
    }
    let hits = metric(&b, "keybroker_revocation_view_hits_total").await;
    assert!(hits >= 4, "B's view was not in use ({hits} hits)");
    b
}

/// Introspection and `/v1/apis` answer from the local revocation view while
/// its feed is live; a revocation through another process reaches that view
/// through the feed.
async fn a_revocation_reaches_another_process_s_view_through_the_feed(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let b = peer_with_a_warm_view(&w).await;
    let secret = w.created.secret.clone();

    revoke_jti(&w, w.token()).await;
    let revoked_at = std::time::Instant::now();
    loop {
        let reply = w.introspect_on(&b, w.token(), &secret).await;
        if reply.body["active"] == false {
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(1),
            "B still called the token active a second after its revocation"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    b.apis(&w.created.api_key, w.token())
        .await
        .assert_error(401, "token_revoked");
}

/// The fallback: B's subscription is cut and cannot come back, so the
/// revocation A announces reaches nobody. B must still refuse the token on
/// its very next request, by reading Redis. (On a cluster of its own: it
/// cuts every process's subscriptions.)
async fn a_revocation_holds_on_a_process_whose_feed_was_cut(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend.own()).await).await;
    let b = peer_with_a_warm_view(&w).await;
    let secret = w.created.secret.clone();
    let hits = metric(&b, "keybroker_revocation_view_hits_total").await;

    // Cut every subscription, and keep them from coming back.
    let redis_reply = w
        .app
        .redis()
        .command(&["ACL", "SETUSER", "default", "-subscribe"]);
    assert!(redis_reply.starts_with("+OK"), "{redis_reply}");
    let redis_reply = w.app.redis().command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(redis_reply.starts_with(':'), "{redis_reply}");
    feed_is(&b, false).await;
    assert!(metric(&b, "keybroker_revocation_feed_losses_total").await >= 1);

    revoke_jti(&w, w.token()).await;
    let misses = metric(&b, "keybroker_revocation_view_misses_total").await;
    let reply = w.introspect_on(&b, w.token(), &secret).await;
    assert_eq!(reply.body["active"], false, "{}", reply.text);
    b.apis(&w.created.api_key, w.token())
        .await
        .assert_error(401, "token_revoked");
    b.refresh(&w.created.api_key, w.token(), None)
        .await
        .assert_error(401, "token_revoked");
    assert!(metric(&b, "keybroker_revocation_view_misses_total").await >= misses + 3);

    // The subscription comes back; the view is trusted again, and what it
    // learns from Redis still says revoked.
    let redis_reply = w
        .app
        .redis()
        .command(&["ACL", "SETUSER", "default", "+subscribe"]);
    assert!(redis_reply.starts_with("+OK"), "{redis_reply}");
    feed_is(&b, true).await;
    for _ in 0..2 {
        let reply = w.introspect_on(&b, w.token(), &secret).await;
        assert_eq!(reply.body["active"], false, "{}", reply.text);
    }
    let hits_after = metric(&b, "keybroker_revocation_view_hits_total").await;
    assert!(hits_after > hits, "B's view was not trusted again");
}

/// A subscription that goes silent (no reset, no EOF) is noticed by its
/// missing ping answers, and the view stops being trusted. (On a cluster of
/// its own: it pauses every client.)
async fn a_silent_feed_is_not_trusted(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend.own()).await).await;
    let b = w.app.spawn_peer().await;
    feed_is(&b, true).await;
    // Redis stops answering every client for two seconds: the pings go
    // unanswered, nothing is closed.
    let redis_reply = w.app.redis().command(&["CLIENT", "PAUSE", "2000", "ALL"]);
    assert!(redis_reply.starts_with("+OK"), "{redis_reply}");
    let paused_at = std::time::Instant::now();
    feed_is(&b, false).await;
    assert!(paused_at.elapsed() < std::time::Duration::from_millis(1900));
    feed_is(&b, true).await;
}

every_backend!(;
    shared:
    a_revocation_through_one_process_holds_on_another,
    a_warm_second_process_sees_every_change_at_once,
    a_revocation_reaches_another_process_s_view_through_the_feed,
    a_revocation_holds_on_a_process_whose_feed_was_cut,
    a_silent_feed_is_not_trusted,
);
