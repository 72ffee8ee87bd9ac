//! The signing-key ring (SPEC §12): a rotation publishes the next key before
//! it signs, old tokens keep verifying until their key is removed, an
//! immediate rotation kills the old key's tokens on every process, and the
//! JWKS revalidates with a strong ETag.

use std::time::{Duration, Instant};

use keybroker::clock::Clock;
use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{spawn_app, spawn_app_with, Backend, Reply, TestApp};

const URI: &str = "/search/v1/search";
/// The default `tokens.leeway_seconds`: a process signs with a new key a
/// leeway after its `active_at`.
const LEEWAY: i64 = 30;
/// The longest token lifetime.
const MAX_TTL: i64 = 86_400;

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn rotate(app: &TestApp, body: Value) -> Reply {
    let reply = app
        .admin("POST", "/admin/v1/signing-keys/rotate", Some(body))
        .await;
    assert_eq!(reply.status, 200, "rotate: {}", reply.text);
    reply
}

fn state_of(list: &Value, kid: &str) -> String {
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "absent".into())
}

async fn a_rotation_publishes_the_next_key_before_it_signs(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let before = w.token().to_owned();
    let old = kid_of(&before);

    let rotated = rotate(&w.app, json!({ "publish_lead_seconds": 2 })).await;
    let new = rotated.body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let jwks = w.app.get("/.well-known/jwks.json").await;
    let published = kids(&jwks.body);
    assert_eq!(published.len(), 2, "{}", jwks.text);
    assert!(published.contains(&old) && published.contains(&new));
    let list = w.app.admin("GET", "/admin/v1/signing-keys", None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(state_of(&list.body, &new), "next");
    assert_eq!(state_of(&list.body, &old), "active");
    assert!(!list.text.contains("sealed") && !list.text.contains("PRIVATE"));
    assert_eq!(list.body["audit"][0]["action"], json!("signing_key.rotate"));

    // Within the lead the old key still signs.
    let during = w.fresh_token().await;
    assert_eq!(kid_of(&during), old);

    // Past the lead (and the leeway every process waits on top of it).
    w.app.clock.advance(2 + LEEWAY);
    let after = w.fresh_token().await;
    assert_eq!(kid_of(&after), new);
    for token in [&before, &during, &after] {
        assert_eq!(w.verify(URI, token).await.status, 200);
    }
    let list = w.app.admin("GET", "/admin/v1/signing-keys", None).await;
    assert_eq!(state_of(&list.body, &new), "active");
    assert_eq!(state_of(&list.body, &old), "retired");

    // Past the retired key's removal: gone from the JWKS, its tokens refused.
    w.app.clock.advance(MAX_TTL + LEEWAY + 1);
    let jwks = w.app.get("/.well-known/jwks.json").await;
    assert_eq!(kids(&jwks.body), vec![new.clone()]);
    let forged_late = w.token_at(w.app.clock.now());
    assert_eq!(kid_of(&forged_late), old);
    w.verify(URI, &forged_late)
        .await
        .assert_error(401, "invalid_token");
    let fresh = w.fresh_token().await;
    assert_eq!(kid_of(&fresh), new);
    assert_eq!(w.verify(URI, &fresh).await.status, 200);
    // The next rotation deletes the removed key from the store.
    rotate(&w.app, json!({ "publish_lead_seconds": 0 })).await;
    let list = w.app.admin("GET", "/admin/v1/signing-keys", None).await;
    assert_eq!(state_of(&list.body, &old), "absent", "{}", list.text);
}

async fn an_immediate_rotation_kills_the_old_key_s_tokens(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let old = kid_of(w.token());
    assert_eq!(w.verify(URI, w.token()).await.status, 200);
    let rotated = rotate(&w.app, json!({ "immediate": true })).await;
    assert_eq!(rotated.body["revoked"], json!([old]));
    w.token_refused_everywhere(URI, 401, "invalid_token").await;
    let fresh = w.fresh_token().await;
    assert_ne!(kid_of(&fresh), old, "the new key signs at once");
    assert_eq!(w.verify(URI, &fresh).await.status, 200);
    assert!(!kids(&w.app.get("/.well-known/jwks.json").await.body).contains(&old));
}

/// The JWKS, asked for only if it changed since `etag`.
async fn jwks_if_none_match(app: &TestApp, etag: &str) -> Reply {
    let request = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .insert_header(("if-none-match", etag));
    app.send(request, None).await
}

async fn the_jwks_revalidates_with_a_strong_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.get("/.well-known/jwks.json").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"'), "strong: {etag}");
    assert_eq!(first.header("cache-control"), Some("public, max-age=300"));
    let again = jwks_if_none_match(&app, &etag).await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    rotate(&app, json!({})).await;
    let changed = jwks_if_none_match(&app, &etag).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(kids(&changed.body).len(), 2);
}

async fn a_token_of_an_unknown_key_is_an_invalid_token(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let stranger = keybroker::tokens::TokenService::new(
        w.app.address.clone(),
        &keybroker::tokens::generate_pkcs8_pem(),
        &[],
        30,
    )
    .unwrap();
    let token = w.sign_with(&stranger, w.app.clock.now());
    for _ in 0..20 {
        w.verify(URI, &token)
            .await
            .assert_error(401, "invalid_token");
    }
    w.app
        .apis(&w.created.api_key, &token)
        .await
        .assert_error(401, "invalid_token");
}

every_backend!(
    a_rotation_publishes_the_next_key_before_it_signs,
    an_immediate_rotation_kills_the_old_key_s_tokens,
    the_jwks_revalidates_with_a_strong_etag,
    a_token_of_an_unknown_key_is_an_invalid_token;
    shared:
    a_rotation_through_one_process_reaches_the_other,
    start_up_refuses_a_ring_it_cannot_use,
    processes_racing_on_an_empty_ring_agree_on_one_key,
    two_rotations_under_load_fail_no_verification,
    a_corrupt_ring_entry_fails_the_key_routes_closed,
    an_immediate_rotation_holds_on_a_process_whose_feed_was_cut,
);

/// Two processes on one Redis: a routine rotation through A is known to B
/// before the new key signs, and an immediate one kills the old key's tokens
/// on B too.
async fn a_rotation_through_one_process_reaches_the_other(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let b = w.app.spawn_peer().await;
    let old = kid_of(w.token());

    let rotated = rotate(&w.app, json!({ "publish_lead_seconds": 2 })).await;
    let new = rotated.body["kid"].as_str().unwrap().to_owned();
    // B learns of it through the feed, well within the lead.
    let started = Instant::now();
    while !kids(&b.get("/.well-known/jwks.json").await.body).contains(&new) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "B never published the next key"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    w.app.clock.advance(2 + LEEWAY);
    let on_b = b
        .auth_with_secret(&w.created.api_key, &w.created.secret)
        .await;
    let on_b = on_b.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&on_b), new);
    assert_eq!(w.verify(URI, &on_b).await.status, 200);
    assert_eq!(w.verify(URI, w.token()).await.status, 200);

    // A leaked key: every token of the keys before is refused on B too, on
    // the product path at the very next request (the revocation lists are
    // read from the store), whether or not B has read the ring yet.
    w.app.clock.advance(1);
    let rotated = rotate(&w.app, json!({ "immediate": true })).await;
    assert!(rotated.body["revoked"]
        .as_array()
        .unwrap()
        .contains(&json!(new)));
    assert!(rotated.body["revoked"]
        .as_array()
        .unwrap()
        .contains(&json!(old)));
    for gateway in [true, false] {
        let reply = check_reply(&b, &w, &on_b, gateway).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert!(
            ["invalid_token", "token_revoked"].contains(&reply.reason()),
            "{}",
            reply.text
        );
    }
    // B learns of the new ring within a second. Until then its view may
    // already hold the rotation's revocations: they are announced apart from
    // the ring change, and on a cluster the ring's announcement follows its
    // replica's acknowledgement, so it can come second. Once refused, the
    // token stays refused.
    let started = Instant::now();
    let mut refused = false;
    loop {
        let reply = b.apis(&w.created.api_key, &on_b).await;
        if reply.status == 401 && reply.reason() == "invalid_token" {
            break;
        }
        if refused || reply.status == 401 {
            reply.assert_error(401, "token_revoked");
            refused = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still took a revoked key's token, or kept its ring, a second later"
        );
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The ring's start-up checks: Redis without a key-encryption key, a wrong
/// key-encryption key on an existing ring, a JWKS max-age not shorter than
/// the publish lead; and processes racing on an empty ring agree on one key.
async fn start_up_refuses_a_ring_it_cannot_use(backend: Backend) {
    let w = spawn_app(backend).await;

    let mut settings = w.settings.clone();
    settings.signing.key_encryption_key = None;
    let err = keybroker::startup::Application::build(settings)
        .await
        .err()
        .expect("no key-encryption key with Redis");
    let err = err.to_string();
    assert!(
        err.contains("KEYBROKER_KEY_ENCRYPTION_KEY") && err.contains("openssl rand -base64 32"),
        "{err}"
    );

    let mut settings = w.settings.clone();
    settings.signing.key_encryption_key = Some(keybroker::config::Sensitive::new(
        "b3RoZXIta2V5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU=",
    ));
    let err = keybroker::startup::Application::build(settings)
        .await
        .err()
        .expect("a wrong key-encryption key")
        .to_string();
    assert!(
        err.contains("KEYBROKER_KEY_ENCRYPTION_KEY") && err.contains("does not open"),
        "{err}"
    );

    let mut settings = w.settings.clone();
    settings.signing.publish_lead_seconds = 300;
    let err = keybroker::startup::Application::build(settings)
        .await
        .err()
        .expect("max-age not shorter than the lead")
        .to_string();
    assert!(err.contains("signing.jwks_max_age_seconds"), "{err}");
}

async fn processes_racing_on_an_empty_ring_agree_on_one_key(backend: Backend) {
    let store = crate::helpers::SharedStore::new(backend).expect("a shared store");
    let mut apps = Vec::new();
    for _ in 0..2 {
        apps.push(crate::helpers::spawn_app_on(store.clone(), |s| {
            // Each process would seed the ring with its own key.
            s.signing.key_pem = Some(keybroker::config::Sensitive::new(
                keybroker::tokens::generate_pkcs8_pem(),
            ));
        }));
    }
    let apps = futures_util::future::join_all(apps).await;
    let lists = futures_util::future::join_all(
        apps.iter()
            .map(|a| a.admin("GET", "/admin/v1/signing-keys", None)),
    )
    .await;
    for list in &lists {
        assert_eq!(
            list.body["keys"].as_array().unwrap().len(),
            1,
            "{}",
            list.text
        );
    }
    assert_eq!(lists[0].body["keys"], lists[1].body["keys"]);
}

/// A configuration whose JWKS max-age is not shorter than the publish lead
/// is refused on the memory store too.
#[actix_web::test]
async fn a_jwks_max_age_not_shorter_than_the_lead_is_refused() {
    let mut settings = crate::helpers::base_settings();
    settings.signing.jwks_max_age_seconds = 600;
    let err = keybroker::startup::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("shorter than signing.publish_lead_seconds"),
        "{err}"
    );
    let app = spawn_app_with(Backend::Memory, |s| {
        s.signing.jwks_max_age_seconds = 10;
        s.signing.publish_lead_seconds = 11;
    })
    .await;
    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=10"));
}

/// One request through `app`'s gateway or `/v1/verify` with `token`.
async fn check_on(app: &TestApp, w: &Fixture, token: &str, gateway: bool) -> u16 {
    check_reply(app, w, token, gateway).await.status
}

async fn check_reply(app: &TestApp, w: &Fixture, token: &str, gateway: bool) -> Reply {
    let request = if gateway {
        app.client.get(app.url("/prod/search/v1/search"))
    } else {
        app.client
            .get(app.url("/v1/verify"))
            .insert_header(("x-original-uri", URI))
    };
    let request = request
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(token);
    app.send(request, None).await
}

/// Mints on `from`, verifies on `to` (alternately through the gateway and
/// `/v1/verify`) until `stop`; returns (requests, failures).
async fn mint_and_verify(
    from: &TestApp,
    to: &TestApp,
    w: &Fixture,
    stop: &std::sync::atomic::AtomicBool,
) -> (usize, Vec<String>) {
    let mut requests = 0;
    let mut failures = Vec::new();
    let mut round = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let minted = from
            .auth_with_secret(&w.created.api_key, &w.created.secret)
            .await;
        requests += 1;
        if minted.status != 200 {
            failures.push(format!("mint: {} {}", minted.status, minted.text));
            continue;
        }
        let token = minted.body["accessToken"].as_str().unwrap().to_owned();
        for gateway in [true, false] {
            let status = check_on(to, w, &token, gateway).await;
            requests += 1;
            if status != 200 {
                failures.push(format!(
                    "round {round}: {} with kid {} -> {status}",
                    if gateway { "gateway" } else { "verify" },
                    kid_of(&token)
                ));
            }
        }
        round += 1;
    }
    (requests, failures)
}

/// Two processes on one Redis under continuous load, one task minting on A
/// and verifying on B, the other the reverse, with two routine rotations
/// during the run: not one verification fails, nothing answers 5xx.
async fn two_rotations_under_load_fail_no_verification(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let b = w.app.spawn_peer().await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let rotations = async {
        let mut kids = Vec::new();
        for _ in 0..2 {
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            let rotated = rotate(&w.app, json!({ "publish_lead_seconds": 2 })).await;
            kids.push(rotated.body["kid"].as_str().unwrap().to_owned());
            // The lead passes (and the leeway after it) while the load runs.
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            w.app.clock.advance(2 + LEEWAY);
        }
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        kids
    };
    let (kids, (a_to_b, failures_ab), (b_to_a, failures_ba)) = tokio::join!(
        rotations,
        mint_and_verify(&w.app, &b, &w, &stop),
        mint_and_verify(&b, &w.app, &w, &stop),
    );
    let failures: Vec<_> = failures_ab.into_iter().chain(failures_ba).collect();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
    // The last key signs on both processes at the end.
    let last = kids.last().unwrap();
    let on_a = w.fresh_token().await;
    let on_b = b
        .auth_with_secret(&w.created.api_key, &w.created.secret)
        .await;
    assert_eq!(&kid_of(&on_a), last);
    assert_eq!(&kid_of(on_b.body["accessToken"].as_str().unwrap()), last);
    let total = a_to_b + b_to_a;
    assert!(
        total > 100,
        "too little load to mean anything: {total} requests"
    );
    eprintln!("two rotations under load: {total} requests, 0 failed");
}

/// A ring entry that does not parse: the key routes fail closed with 503
/// (never a 500, never a new ring), and this process keeps signing and
/// verifying with the keys it had.
async fn a_corrupt_ring_entry_fails_the_key_routes_closed(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let ring = format!("{}:{{ring}}:keys", w.app.key_prefix());
    w.app
        .redis()
        .command(&["HSET", &ring, "garbage", "{not json"]);
    w.app
        .admin("GET", "/admin/v1/signing-keys", None)
        .await
        .assert_error(503, "store_unavailable");
    let reply = w
        .app
        .admin("POST", "/admin/v1/signing-keys/rotate", Some(json!({})))
        .await;
    reply.assert_error(503, "store_unavailable");
    assert_eq!(w.verify(URI, &w.fresh_token().await).await.status, 200);
    assert_eq!(w.verify(URI, w.token()).await.status, 200);
}

/// A leaked key while B's feed is cut: B hears nothing of the rotation and
/// keeps its ring for up to 30 s, yet refuses the old key's tokens on its
/// very next request, on every route, because they joined the revocation
/// lists it reads from Redis. (On a cluster of its own: it cuts every
/// process's subscriptions.)
async fn an_immediate_rotation_holds_on_a_process_whose_feed_was_cut(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend.own()).await).await;
    let b = crate::feed::peer_with_a_warm_view(&w).await;
    assert_eq!(check_on(&b, &w, w.token(), true).await, 200);
    let reply = w
        .app
        .redis()
        .command(&["ACL", "SETUSER", "default", "-subscribe"]);
    assert!(reply.starts_with("+OK"), "{reply}");
    let reply = w.app.redis().command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(reply.starts_with(':'), "{reply}");
    crate::feed::feed_is(&b, false).await;

    w.app.clock.advance(1);
    rotate(&w.app, json!({ "immediate": true })).await;
    for gateway in [true, false] {
        check_reply(&b, &w, w.token(), gateway)
            .await
            .assert_error(401, "token_revoked");
    }
    b.apis(&w.created.api_key, w.token())
        .await
        .assert_error(401, "token_revoked");
    let reply = w.introspect_on(&b, w.token(), &w.created.secret).await;
    assert_eq!(reply.body["active"], false, "{}", reply.text);
    // New tokens, of the new key, work on both.
    let fresh = w.fresh_token().await;
    assert_eq!(check_on(&w.app, &w, &fresh, true).await, 200);
}
