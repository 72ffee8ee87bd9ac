//! The product gateway, forward-auth and introspection, against a real
//! upstream that counts what reaches it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use keybroker::clock::Clock;
use keybroker::tokens::{Claims, TokenService};
use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{claims_of, signing_key_pem, spawn_app, spawn_app_with, Backend, Body};

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn proxies_method_path_query_and_body(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let request = w
        .app
        .client
        .post(w.app.url("/prod/search/v1/search?q=hello%20world&page=2"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .insert_header(("x-custom", "kept"))
        .bearer_auth(w.token());
    let reply = w
        .app
        .send(
            request,
            Some(Body::Raw(
                Some("application/json"),
                b"{\"q\":\"hello\"}".to_vec(),
            )),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.header("x-upstream"),
        Some("test"),
        "upstream headers come back"
    );
    assert_eq!(reply.body["upstream"], json!(true));

    let seen = w.upstream.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/api/v1/search");
    assert_eq!(seen.query, "q=hello%20world&page=2");
    assert_eq!(seen.body, b"{\"q\":\"hello\"}");
    assert_eq!(seen.header("x-custom"), Some("kept"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.header("x-keybroker-instance"),
        Some(w.created.id.as_str())
    );
    assert_eq!(seen.header("x-keybroker-subject-kind"), Some("server"));
    let jti = claims_of(w.token())["jti"].as_str().unwrap().to_owned();
    assert_eq!(seen.header("x-keybroker-token-id"), Some(jti.as_str()));
    assert!(seen.header("x-forwarded-for").is_some());
}

async fn credentials_and_forged_identity_never_reach_the_upstream(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let request = w
        .app
        .client
        .get(w.app.url("/prod/search/v1/search"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .insert_header(("x-keybroker-instance", "ins_forged"))
        .insert_header(("x-keybroker-subject-kind", "admin"))
        .insert_header(("x-keybroker-extra", "forged"))
        .bearer_auth(w.token());
    let reply = w.app.send(request, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = w.upstream.last();
    for header in [
        "authorization",
        "x-inbenta-key",
        "x-access-token",
        "x-keybroker-extra",
    ] {
        assert!(
            seen.header(header).is_none(),
            "{header} reached the upstream"
        );
    }
    assert_eq!(
        seen.header("x-keybroker-instance"),
        Some(w.created.id.as_str())
    );
    assert_eq!(seen.header("x-keybroker-subject-kind"), Some("server"));
    let all: String = seen
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect();
    assert!(
        !all.contains(w.token()) && !all.contains("ins_forged"),
        "{all}"
    );
}

async fn each_check_refuses_in_order_without_reaching_the_upstream(backend: Backend) {
    let w = Fixture::with_products(
        spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await,
    )
    .await;
    let path = "/prod/search/v1/search";
    let before = w.upstream.hits();

    // No token at all, then one that is not a JWT.
    let request = w
        .app
        .client
        .get(w.app.url(path))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()));
    w.refused(
        &w.app.send(request, None).await,
        401,
        "missing_token",
        before,
    );
    w.refused(
        &w.call(path, "not-a-token").await,
        401,
        "invalid_token",
        before,
    );

    // Signature and claims.
    let parts: Vec<&str> = w.token().split('.').collect();
    let mut payload = b64_json(parts[1]);
    payload["sub"] = json!("ins_other");
    let tampered_payload = format!("{}.{}.{}", parts[0], encode(&payload), parts[2]);
    w.refused(
        &w.call(path, &tampered_payload).await,
        401,
        "invalid_token",
        before,
    );

    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let tampered_signature = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    w.refused(
        &w.call(path, &tampered_signature).await,
        401,
        "invalid_token",
        before,
    );

    let header = b64_json(parts[0]);
    let none = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
        parts[1]
    );
    w.refused(&w.call(path, &none).await, 401, "invalid_token", before);

    // HS256 "signed" with the public key from the JWKS: the classic key confusion.
    let jwks = w.app.get("/.well-known/jwks.json").await.body;
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let hs_header = encode(&json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}));
    let signing_input = format!("{hs_header}.{}", parts[1]);
    for key in [public.clone(), jwks.to_string().into_bytes()] {
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            signing_input.as_bytes(),
        );
        let hs256 = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        w.refused(&w.call(path, &hs256).await, 401, "invalid_token", before);
    }

    // A well-formed EdDSA token from a key the broker does not know.
    let stranger = TokenService::new(
        w.app.address.clone(),
        &keybroker::tokens::generate_pkcs8_pem(),
        &[],
        30,
    )
    .unwrap();
    let unknown_kid = w.sign_with(&stranger, chrono::Utc::now());
    w.refused(
        &w.call(path, &unknown_kid).await,
        401,
        "invalid_token",
        before,
    );

    // Time: expired beyond the leeway, and not valid yet beyond it.
    let now = w.app.clock.now();
    let expired = w.token_at(now - chrono::Duration::seconds(1200 + 31));
    w.refused(&w.call(path, &expired).await, 401, "token_expired", before);
    let within_leeway = w.token_at(now - chrono::Duration::seconds(1200 + 20));
    assert_eq!(
        w.call(path, &within_leeway).await.status,
        200,
        "inside the leeway"
    );
    let before = w.upstream.hits();
    let future = w.token_at(now + chrono::Duration::seconds(31));
    w.refused(
        &w.call(path, &future).await,
        401,
        "token_not_yet_valid",
        before,
    );

    // The API key: missing, then another instance's.
    let request = w.app.client.get(w.app.url(path)).bearer_auth(w.token());
    w.refused(
        &w.app.send(request, None).await,
        401,
        "missing_api_key",
        before,
    );
    let other = w.app.create_instance().await;
    w.refused(
        &w.call_from(path, w.token(), &other.api_key, None).await,
        403,
        "instance_mismatch",
        before,
    );

    // The product.
    w.refused(
        &w.call("/prod/billing/v1/x", w.token()).await,
        404,
        "unknown_product",
        before,
    );

    // Origin rules: browser token from another origin; server token from a browser.
    let (_, key, _) = w.app.add_domain_key(&w.created.id, &["example.com"]).await;
    let browser = w
        .app
        .auth_with_domain_key(&w.created.api_key, &key, Some("https://example.com"))
        .await;
    let browser = browser.body["accessToken"].as_str().unwrap().to_owned();
    let ok = w
        .call_from(
            path,
            &browser,
            &w.created.api_key,
            Some("https://example.com"),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    assert_eq!(
        w.upstream.last().header("x-keybroker-subject-kind"),
        Some("browser")
    );
    let before = w.upstream.hits();
    for origin in [Some("https://evil.example"), None] {
        w.refused(
            &w.call_from(path, &browser, &w.created.api_key, origin)
                .await,
            403,
            "origin_not_allowed",
            before,
        );
    }
    w.refused(
        &w.call_from(
            path,
            w.token(),
            &w.created.api_key,
            Some("https://example.com"),
        )
        .await,
        403,
        "secret_from_browser",
        before,
    );

    // Dot segments cannot climb out of the upstream's base path.
    w.refused(
        &w.call("/prod/search/..%2F..%2Fadmin", w.token()).await,
        400,
        "invalid_path",
        before,
    );
    w.refused(
        &w.call("/prod/search/a/%2e%2e/b", w.token()).await,
        400,
        "invalid_path",
        before,
    );
}

async fn verify_answers_for_reverse_proxies(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    for uri in ["/prod/search/v1/search?q=a", "/search/v1/search"] {
        let reply = w.verify(uri, w.token()).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text);
        assert_eq!(
            reply.header("x-keybroker-instance"),
            Some(w.created.id.as_str())
        );
        assert_eq!(reply.header("x-keybroker-subject-kind"), Some("server"));
        assert_eq!(
            reply.header("x-keybroker-token-id"),
            claims_of(w.token())["jti"].as_str()
        );
    }
    w.verify("/billing/x", w.token())
        .await
        .assert_error(404, "unknown_product");
    // Behind a proxy that normalises paths, this names `search` but reaches `chat`.
    for sneaky in [
        "/search/../chat/v1/chat",
        "/prod/search/%2e%2e/chat/x",
        "/search/..%2Fchat/x",
    ] {
        w.verify(sneaky, w.token())
            .await
            .assert_error(400, "invalid_path");
    }
    w.verify("/search/x", "garbage")
        .await
        .assert_error(401, "invalid_token");
    let request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(w.token());
    w.app
        .send(request, None)
        .await
        .assert_error(400, "missing_original_uri");
    let request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-original-uri", "/chat/v1/chat"))
        .insert_header(("x-original-method", "post"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(w.token());
    let reply = w.app.send(request, None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["method"], json!("POST"));
    assert_eq!(reply.body["product"], json!("chat"));
    // Only the configured header is read (see verify_uri.rs for the others).
    let request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-forwarded-uri", "/chat/v1/chat"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(w.token());
    w.app
        .send(request, None)
        .await
        .assert_error(400, "missing_original_uri");
    assert_eq!(w.upstream.hits(), 0, "verify proxies nothing");
}

async fn introspection(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let reply = w.introspect(w.token()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = claims_of(w.token());
    assert_eq!(reply.body["active"], json!(true));
    for claim in [
        "sub", "jti", "sid", "exp", "iat", "iss", "aud", "cred", "kind",
    ] {
        assert_eq!(reply.body[claim], claims[claim], "{claim}");
    }
    // JSON body works too.
    let basic = STANDARD.encode(format!("{}:{}", w.created.api_key, w.created.secret));
    let request = w
        .app
        .client
        .post(w.app.url("/v1/introspect"))
        .insert_header(("authorization", format!("Basic {basic}")));
    let reply = w
        .app
        .send(request, Some(Body::Json(json!({"token": w.token()}))))
        .await;
    assert_eq!(reply.body["active"], json!(true));

    for bad in [
        "garbage".to_owned(),
        w.token()[..w.token().len() - 3].to_owned(),
    ] {
        assert_eq!(w.introspect(&bad).await.body, json!({"active": false}));
    }
    // Another instance's token is not active for this one.
    let (_, other_token) = w.app.server_token().await;
    assert_eq!(
        w.introspect(&other_token).await.body,
        json!({"active": false})
    );

    // Wrong client credentials: 401, not an answer about the token.
    let wrong = STANDARD.encode(format!(
        "{}:{}",
        w.created.api_key,
        keybroker::domain::credential::Secret::generate().expose()
    ));
    let request = w
        .app
        .client
        .post(w.app.url("/v1/introspect"))
        .insert_header(("authorization", format!("Basic {wrong}")));
    let reply = w
        .app
        .send(request, Some(Body::Json(json!({"token": w.token()}))))
        .await;
    reply.assert_error(401, "invalid_credentials");
}

/// The client is authenticated before the body is read, whatever the store:
/// a wrong client learns nothing from its body and always counts as a failed
/// authentication. (Both used to run at once, so on Redis a malformed body
/// answered 400 before the client lookup, and the failure went uncounted.)
async fn introspection_authenticates_the_client_before_the_body(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let wrong = STANDARD.encode(format!(
        "{}:{}",
        w.created.api_key,
        keybroker::domain::credential::Secret::generate().expose()
    ));
    let bodies: [(&'static str, &[u8]); 3] = [
        ("application/json", b"{not json"),
        ("application/x-www-form-urlencoded", b"nothing=here"),
        ("text/plain", b"token"),
    ];
    for (content_type, body) in bodies {
        let request = w
            .app
            .client
            .post(w.app.url("/v1/introspect"))
            .insert_header(("authorization", format!("Basic {wrong}")));
        let reply = w
            .app
            .send(request, Some(Body::Raw(Some(content_type), body.to_vec())))
            .await;
        reply.assert_error(401, "invalid_credentials");
    }
    // A genuine client gets the body's own error.
    let good = STANDARD.encode(format!("{}:{}", w.created.api_key, w.created.secret));
    let request = w
        .app
        .client
        .post(w.app.url("/v1/introspect"))
        .insert_header(("authorization", format!("Basic {good}")));
    let reply = w
        .app
        .send(
            request,
            Some(Body::Raw(Some("application/json"), b"{not json".to_vec())),
        )
        .await;
    reply.assert_error(400, "invalid_json");
}

async fn upstream_down_is_502_and_slow_is_504(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.gateway.upstream_timeout_ms = 500).await;
    let w = Fixture::with_products(app).await;
    let reply = w.call("/prod/search/slow", w.token()).await;
    reply.assert_error(504, "upstream_timeout");
    w.upstream.stop().await;
    let reply = w.call("/prod/search/v1/search", w.token()).await;
    reply.assert_error(502, "upstream_unavailable");
}

/// A token signed with the broker's own key whose `exp` or `nbf` is at the
/// edge of a 64-bit time: adding or taking the leeway would overflow. Only a
/// signer gone wrong makes one, and it is refused like any invalid token, not
/// answered with a dropped connection.
async fn times_that_overflow_with_the_leeway_are_refused(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let path = "/prod/search/v1/search";
    let before = w.upstream.hits();
    let signer = TokenService::new(w.app.address.clone(), signing_key_pem(), &[], 30).unwrap();
    let valid = w.token_at(w.app.clock.now());
    for (claim, value) in [("exp", i64::MAX), ("nbf", i64::MIN)] {
        let mut claims = claims_of(&valid);
        claims[claim] = json!(value);
        let token = signer
            .sign(&serde_json::from_value::<Claims>(claims).unwrap())
            .unwrap();
        w.refused(&w.call(path, &token).await, 401, "invalid_token", before);
    }
    assert_eq!(w.call(path, &valid).await.status, 200);
}

every_backend!(
    proxies_method_path_query_and_body,
    credentials_and_forged_identity_never_reach_the_upstream,
    each_check_refuses_in_order_without_reaching_the_upstream,
    verify_answers_for_reverse_proxies,
    introspection,
    introspection_authenticates_the_client_before_the_body,
    upstream_down_is_502_and_slow_is_504,
    times_that_overflow_with_the_leeway_are_refused,
);
