//! Tokens verify against the published JWKS with an independent JWT library
//! (jwt-compact over ed25519-compact), not the broker's own signing code.

use base64::Engine;
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, UntrustedToken};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::every_backend;
use crate::helpers::{spawn_app_with, Backend};

#[derive(Debug, Deserialize)]
struct Custom {
    iss: String,
    sub: String,
    aud: String,
    jti: String,
    sid: String,
    cred: String,
    kind: String,
    org: Option<String>,
}

fn verify_with_jwks(jwks: &Value, token: &str) -> (jwt_compact::Claims<Custom>, String) {
    let untrusted = UntrustedToken::new(token).expect("token parses");
    assert_eq!(untrusted.algorithm(), "EdDSA");
    let kid = untrusted.header().key_id.clone().expect("kid in header");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .expect("kid is published");
    assert_eq!(jwk["kty"], json!("OKP"));
    assert_eq!(jwk["crv"], json!("Ed25519"));
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap())
        .unwrap();
    let key = ed25519_compact::PublicKey::from_slice(&x).unwrap();
    let verified = Ed25519
        .validator::<Custom>(&key)
        .validate(&untrusted)
        .expect("signature verifies against the JWKS");
    (verified.into_parts().1, kid)
}

async fn tokens_verify_against_the_jwks(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await;
    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert!(jwks.header("cache-control").is_some());
    let created = app.create_instance().await;

    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    let token = reply.body["accessToken"].as_str().unwrap();
    let (claims, _) = verify_with_jwks(&jwks.body, token);
    assert_eq!(claims.custom.iss, app.address);
    assert_eq!(claims.custom.sub, created.id);
    assert_eq!(claims.custom.aud, "keybroker");
    assert_eq!(claims.custom.kind, "server");
    assert_eq!(claims.custom.cred, created.secret_id);
    assert!(claims.custom.org.is_none());
    assert!(!claims.custom.jti.is_empty() && !claims.custom.sid.is_empty());
    let (iat, nbf, exp) = (
        claims.issued_at.unwrap(),
        claims.not_before.unwrap(),
        claims.expiration.unwrap(),
    );
    assert_eq!(iat, nbf);
    assert_eq!((exp - iat).num_seconds(), 1200);
    assert_eq!(exp.timestamp(), reply.body["expiration"].as_i64().unwrap());

    let (_, key, _) = app.add_domain_key(&created.id, &["example.com"]).await;
    let reply = app
        .auth_with_domain_key(&created.api_key, &key, Some("https://example.com"))
        .await;
    let (claims, _) = verify_with_jwks(&jwks.body, reply.body["accessToken"].as_str().unwrap());
    assert_eq!(claims.custom.kind, "browser");
    assert_eq!(claims.custom.org.as_deref(), Some("https://example.com"));
}

async fn a_tampered_token_fails_independent_verification(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let (_, token) = app.server_token().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["sub"] = json!("ins_someone_else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    let forged = parts.join(".");
    let untrusted = UntrustedToken::new(&forged).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let key = ed25519_compact::PublicKey::from_slice(&x).unwrap();
    assert!(Ed25519
        .validator::<Value>(&key)
        .validate(&untrusted)
        .is_err());
}

/// A verifier that caches the JWKS and revalidates it with `If-None-Match`,
/// as Envoy or a JWT library would, verifies every token across a rotation:
/// the next key reaches its cache before any token carries it.
async fn a_caching_verifier_verifies_across_a_rotation(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let created = app.create_instance().await;
    let fetch = |etag: Option<String>| {
        let mut request = app.client.get(app.url("/.well-known/jwks.json"));
        if let Some(etag) = etag {
            request = request.insert_header(("if-none-match", etag));
        }
        app.send(request, None)
    };
    // The verifier's cache: the set and its ETag.
    let first = fetch(None).await;
    let mut cached = (first.body.clone(), first.header("etag").unwrap().to_owned());
    let before = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    verify_with_jwks(&cached.0, &before);
    assert_eq!(fetch(Some(cached.1.clone())).await.status, 304);

    let rotated = app
        .admin(
            "POST",
            "/admin/v1/signing-keys/rotate",
            Some(json!({ "publish_lead_seconds": 2 })),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let revalidated = fetch(Some(cached.1.clone())).await;
    assert_eq!(revalidated.status, 200, "the set changed");
    cached = (
        revalidated.body.clone(),
        revalidated.header("etag").unwrap().to_owned(),
    );
    app.clock.advance(2 + 30);
    let after = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, kid) = verify_with_jwks(&cached.0, &after);
    assert_eq!(json!(kid), rotated.body["kid"]);
    verify_with_jwks(&cached.0, &before);
    assert_eq!(fetch(Some(cached.1.clone())).await.status, 304);
}

every_backend!(
    tokens_verify_against_the_jwks,
    a_tampered_token_fails_independent_verification,
    a_caching_verifier_verifies_across_a_rotation
);
