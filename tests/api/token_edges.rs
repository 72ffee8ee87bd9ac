//! Tokens signed with the broker's own key that it would never have issued:
//! dated in the future (`iat` past the leeway, `nbf` now) or with a critical
//! header parameter (RFC 7515 §4.1.11). Both are refused, on every route
//! that takes a token.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use keybroker::clock::Clock;
use keybroker::tokens::{Claims, TokenService};
use ring::signature::Ed25519KeyPair;
use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, signing_key_pem, spawn_app, Backend};

const PATH: &str = "/prod/search/v1/search";

/// The broker's signing key, as ring reads it.
fn broker_key() -> Ed25519KeyPair {
    let b64: String = signing_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).unwrap();
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `header` and the payload of `token`, signed with the broker's key.
fn signed_with_header(token: &str, header: Value) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let input = format!("{}.{payload}", encode(&header));
    let signature = broker_key().sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Asserts that every route taking an access token refuses `token` with
/// 401 `invalid_token`, and that the upstream is not reached.
async fn assert_refused_everywhere(w: &Fixture, token: &str, what: &str) {
    let before = w.upstream.hits();
    let reply = w.call(PATH, token).await;
    assert_eq!(reply.status, 401, "{what}: {}", reply.text);
    w.refused(&reply, 401, "invalid_token", before);
    w.verify("/search/v1/search", token)
        .await
        .assert_error(401, "invalid_token");
    w.app
        .apis(&w.created.api_key, token)
        .await
        .assert_error(401, "invalid_token");
    w.app
        .refresh(&w.created.api_key, token, None)
        .await
        .assert_error(401, "invalid_token");
    let introspected = w.introspect(token).await;
    assert_eq!(introspected.status, 200, "{what}: {}", introspected.text);
    assert_eq!(introspected.body["active"], json!(false), "{what}");
}

async fn a_token_dated_in_the_future_is_refused(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let signer = TokenService::new(w.app.address.clone(), signing_key_pem(), &[], 30).unwrap();
    let now = w.app.clock.now().timestamp();
    let dated = |iat_ahead: i64| {
        let mut claims: Claims = serde_json::from_value(claims_of(w.token())).unwrap();
        claims.iat = now + iat_ahead;
        claims.nbf = now;
        claims.exp = now + 1200;
        claims.jti = uuid::Uuid::new_v4().simple().to_string();
        signer.sign(&claims).unwrap()
    };
    // Within the leeway (30 s): a clock a little ahead is tolerated.
    assert_eq!(w.call(PATH, &dated(25)).await.status, 200);
    for ahead in [31, 3600, 10 * 365 * 86_400] {
        assert_refused_everywhere(&w, &dated(ahead), &format!("iat now + {ahead} s")).await;
    }
}

async fn a_token_with_a_critical_header_is_refused(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let genuine = w.token();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(genuine.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].clone();
    // The same header re-signed is accepted: only `crit` makes the difference.
    let resigned = signed_with_header(genuine, json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}));
    assert_eq!(w.call(PATH, &resigned).await.status, 200);

    for crit in [
        json!(["x-keybroker-scope"]),
        json!(["exp"]),
        json!([]),
        json!("x-keybroker-scope"),
        Value::Null,
    ] {
        let token = signed_with_header(
            genuine,
            json!({"alg": "EdDSA", "typ": "JWT", "kid": kid, "crit": crit, "x-keybroker-scope": "all"}),
        );
        assert_refused_everywhere(&w, &token, &format!("crit: {crit}")).await;
    }
}

every_backend!(
    a_token_dated_in_the_future_is_refused,
    a_token_with_a_critical_header_is_refused,
);
