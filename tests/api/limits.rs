//! Rate limits shared across processes, daily caps, client addresses behind
//! trusted proxies, and brute-force limits on the exchange.

use keybroker::clock::Clock;
use serde_json::json;

use crate::every_backend;
use crate::fixture::{start_of_a_minute, Fixture, TokenHeader};
use crate::helpers::{spawn_app, spawn_app_with, Backend, Body, Reply, TestApp};

async fn daily_cap_trips_on_its_own(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 100, "daily_cap": 3}))
        .await;
    for _ in 0..3 {
        assert_eq!(s.get_xt("/prod/search/v1/search", &token).await.status, 200);
    }
    let reply = s.get_xt("/prod/search/v1/search", &token).await;
    reply.assert_error(429, "rate_limited");
    assert_eq!(reply.body["error"]["limit"], json!("day"));
    let retry: i64 = reply.header("retry-after").unwrap().parse().unwrap();
    let now = s.app.clock.now().timestamp();
    let day_end = (now.div_euclid(86_400) + 1) * 86_400;
    assert!((retry - (day_end - now)).abs() <= 1, "Retry-After {retry}");
    assert_eq!(reply.header("ratelimit-limit"), Some("3"));
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
}

async fn brute_force_on_auth_is_limited(backend: Backend) {
    let s = Fixture::bare(
        spawn_app_with(backend, |c| c.limits.auth_failures_per_ip_per_minute = 3).await,
    )
    .await;
    start_of_a_minute(&s.app);
    let wrong = keybroker::domain::credential::Secret::generate();
    for _ in 0..3 {
        s.app
            .auth_with_secret(&s.created.api_key, wrong.expose())
            .await
            .assert_error(401, "invalid_credentials");
    }
    // Even the right secret waits now.
    let reply = s
        .app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await;
    reply.assert_error(429, "too_many_failures");
    let retry: i64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((58..=60).contains(&retry), "Retry-After {retry}");
    s.app.clock.advance(60);
    assert_eq!(
        s.app
            .auth_with_secret(&s.created.api_key, &s.created.secret)
            .await
            .status,
        200
    );
}

every_backend!(
    daily_cap_trips_on_its_own,
    brute_force_on_auth_is_limited;
    shared:
    rate_limit_is_shared_by_processes,
);

/// Limit 5/min, two broker processes on one Redis: the 6th request in the
/// minute is refused whichever process gets it; another IP has its own count.
async fn rate_limit_is_shared_by_processes(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let peer = app.spawn_peer().await;
    let s = Fixture::bare(app).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 5}))
        .await;
    start_of_a_minute(&s.app);
    async fn call(on: &TestApp, token: &str, ip: &str) -> Reply {
        let request = on
            .client
            .get(on.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", token))
            .insert_header(("x-forwarded-for", ip));
        on.send(request, None).await
    }
    for i in 0..5 {
        let on = if i % 2 == 0 { &s.app } else { &peer };
        let reply = call(on, &token, "203.0.113.7").await;
        assert_eq!(reply.status, 200, "request {}: {}", i + 1, reply.text);
        assert_eq!(reply.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            reply.header("ratelimit-remaining"),
            Some(&*(4 - i).to_string())
        );
    }
    for on in [&peer, &s.app] {
        let reply = call(on, &token, "203.0.113.7").await;
        reply.assert_error(429, "rate_limited");
        assert_eq!(reply.body["error"]["limit"], json!("minute"));
        let retry: i64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert_eq!(retry, 59, "one second into the window");
        assert_eq!(reply.header("ratelimit-reset"), Some("59"));
        assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    }
    assert_eq!(s.upstream.hits(), 5);
    // Another client IP has its own count.
    assert_eq!(call(&peer, &token, "198.51.100.20").await.status, 200);
    // A new window starts afresh.
    s.app.clock.advance(59);
    assert_eq!(call(&s.app, &token, "203.0.113.7").await.status, 200);
}

/// Forged X-Forwarded-For from an untrusted peer does not buy a new count.
#[actix_web::test]
async fn forwarded_for_from_untrusted_peers_is_ignored() {
    let s = Fixture::bare(spawn_app(Backend::Memory).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    for ip in ["1.1.1.1", "2.2.2.2"] {
        assert_eq!(
            s.call_xt(
                "/prod/search/v1/search",
                &token,
                TokenHeader::AccessToken,
                &[("x-forwarded-for", ip)]
            )
            .await
            .status,
            200
        );
    }
    s.call_xt(
        "/prod/search/v1/search",
        &token,
        TokenHeader::AccessToken,
        &[("x-forwarded-for", "3.3.3.3")],
    )
    .await
    .assert_error(429, "rate_limited");
}

/// IPv6 clients are counted by their /64: rotating addresses inside one
/// subscriber's block buys no new budget.
#[actix_web::test]
async fn ipv6_clients_share_their_64() {
    let app = spawn_app_with(Backend::Memory, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let s = Fixture::bare(app).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    let from = |ip: &'static str| {
        let request = s
            .app
            .client
            .get(s.app.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", token.as_str()))
            .insert_header(("x-forwarded-for", ip));
        s.app.send(request, None)
    };
    assert_eq!(from("2001:db8:1:2::1").await.status, 200);
    assert_eq!(from("2001:db8:1:2::2").await.status, 200);
    from("2001:db8:1:2:ffff::3")
        .await
        .assert_error(429, "rate_limited");
    assert_eq!(from("2001:db8:1:3::1").await.status, 200, "another /64");
}

/// Failed exchanges are also limited per API key: spreading guesses over many
/// client addresses does not escape it, and other instances are not affected.
/// The API key is public, so the limit never locks out the holder of the
/// right secret: past it, only wrong credentials wait.
#[actix_web::test]
async fn brute_force_is_limited_per_api_key_too() {
    let app = spawn_app_with(Backend::Memory, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
        c.limits.auth_failures_per_key_per_minute = 3;
    })
    .await;
    start_of_a_minute(&app);
    let target = app.create_instance().await;
    let other = app.create_instance().await;
    let wrong = keybroker::domain::credential::Secret::generate();
    let auth_from = |ip: &'static str, api_key: String, secret: String| {
        let request = app
            .client
            .post(app.url("/v1/auth"))
            .insert_header(("x-inbenta-key", api_key))
            .insert_header(("x-forwarded-for", ip));
        app.send(request, Some(Body::Json(json!({ "secret": secret }))))
    };
    // Noise (not even the format of a secret) counts against its address
    // only, never against the API key.
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        auth_from(ip, target.api_key.clone(), "kb_sk_not-a-secret".into())
            .await
            .assert_error(401, "invalid_credentials");
    }
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        auth_from(ip, target.api_key.clone(), wrong.expose().to_owned())
            .await
            .assert_error(401, "invalid_credentials");
    }
    let reply = auth_from(
        "198.51.100.4",
        target.api_key.clone(),
        wrong.expose().to_owned(),
    )
    .await;
    reply.assert_error(429, "too_many_failures");
    assert_eq!(reply.body["error"]["limit"], json!("auth_failures"));
    let holder = auth_from(
        "198.51.100.4",
        target.api_key.clone(),
        target.secret.clone(),
    )
    .await;
    assert_eq!(holder.status, 200, "{}", holder.text);
    let untouched = auth_from("198.51.100.4", other.api_key.clone(), other.secret.clone()).await;
    assert_eq!(untouched.status, 200, "{}", untouched.text);
}
