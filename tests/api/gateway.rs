//! The product gateway, forward-auth, introspection and revocation, against a
//! real upstream that counts what reaches it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use keybroker::clock::Clock;
use keybroker::tokens::{TokenKind, TokenRequest, TokenService};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{
    claims_of, signing_key_pem, spawn_app, spawn_app_with, Backend, Body, Created, RedisServer,
    Reply, TestApp, TestUpstream,
};

/// An app, an upstream, an instance whose `search` product is that upstream, and
/// a server token for it.
struct World {
    app: TestApp,
    upstream: TestUpstream,
    created: Created,
    token: String,
}

async fn world(app: TestApp) -> World {
    let upstream = TestUpstream::start();
    let created = app
        .create_instance_with(json!({
            "name": "gateway",
            "products": {
                "search": {"upstream": format!("{}/api", upstream.base)},
                "chat": {"upstream": format!("{}/chat", upstream.base)},
            }
        }))
        .await;
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.body["accessToken"].as_str().unwrap().to_owned();
    World {
        app,
        upstream,
        created,
        token,
    }
}

impl World {
    async fn call(&self, path: &str, token: &str) -> Reply {
        self.call_from(path, token, &self.created.api_key, None)
            .await
    }

    async fn call_from(
        &self,
        path: &str,
        token: &str,
        api_key: &str,
        origin: Option<&str>,
    ) -> Reply {
        let mut request = self
            .app
            .client
            .get(self.app.url(path))
            .insert_header(("x-inbenta-key", api_key))
            .bearer_auth(token);
        if let Some(origin) = origin {
            request = request.insert_header(("origin", origin));
        }
        self.app.send(request, None).await
    }

    async fn verify(&self, original_uri: &str, token: &str) -> Reply {
        let request = self
            .app
            .client
            .get(self.app.url("/v1/verify"))
            .insert_header(("x-original-uri", original_uri))
            .insert_header(("x-inbenta-key", self.created.api_key.as_str()))
            .bearer_auth(token);
        self.app.send(request, None).await
    }

    async fn introspect(&self, token: &str) -> Reply {
        self.introspect_as(token, &self.created.secret).await
    }

    async fn introspect_as(&self, token: &str, secret: &str) -> Reply {
        self.introspect_on(&self.app, token, secret).await
    }

    /// Introspection through `app`, which may be another process than `self.app`.
    async fn introspect_on(&self, app: &TestApp, token: &str, secret: &str) -> Reply {
        let basic = STANDARD.encode(format!("{}:{secret}", self.created.api_key));
        let request = app
            .client
            .post(app.url("/v1/introspect"))
            .insert_header(("authorization", format!("Basic {basic}")));
        let form = format!("token={token}");
        app.send(
            request,
            Some(Body::Raw(
                Some("application/x-www-form-urlencoded"),
                form.into_bytes(),
            )),
        )
        .await
    }

    /// Asserts the refusal and that the upstream was not reached.
    #[track_caller]
    fn refused(&self, reply: &Reply, status: u16, reason: &str, before: usize) {
        reply.assert_error(status, reason);
        assert_eq!(self.upstream.hits(), before, "the upstream was reached");
    }

    fn signer(&self) -> TokenService {
        TokenService::new(self.app.address.clone(), signing_key_pem(), &[], 30).unwrap()
    }

    /// A token signed with the broker's real key, for this instance, at `at`.
    fn token_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        let claims = claims_of(&self.token);
        self.signer()
            .issue(
                TokenRequest {
                    instance_id: &self.created.id,
                    credential_id: claims["cred"].as_str().unwrap(),
                    kind: TokenKind::Server,
                    origin: None,
                    session: None,
                    ttl_seconds: 1200,
                    session_ends_at: None,
                },
                at,
            )
            .unwrap()
            .0
    }
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn proxies_method_path_query_and_body(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let request = w
        .app
        .client
        .post(w.app.url("/prod/search/v1/search?q=hello%20world&page=2"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .insert_header(("x-custom", "kept"))
        .bearer_auth(&w.token);
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
    let jti = claims_of(&w.token)["jti"].as_str().unwrap().to_owned();
    assert_eq!(seen.header("x-keybroker-token-id"), Some(jti.as_str()));
    assert!(seen.header("x-forwarded-for").is_some());
}

async fn credentials_and_forged_identity_never_reach_the_upstream(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let request = w
        .app
        .client
        .get(w.app.url("/prod/search/v1/search"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .insert_header(("x-keybroker-instance", "ins_forged"))
        .insert_header(("x-keybroker-subject-kind", "admin"))
        .insert_header(("x-keybroker-extra", "forged"))
        .bearer_auth(&w.token);
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
        !all.contains(&w.token) && !all.contains("ins_forged"),
        "{all}"
    );
}

async fn each_check_refuses_in_order_without_reaching_the_upstream(backend: Backend) {
    let w = world(spawn_app_with(backend, |s| s.domain_keys.propagation_seconds = 0).await).await;
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
    let parts: Vec<&str> = w.token.split('.').collect();
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
    let claims = claims_of(&w.token);
    let (unknown_kid, _) = stranger
        .issue(
            TokenRequest {
                instance_id: &w.created.id,
                credential_id: claims["cred"].as_str().unwrap(),
                kind: TokenKind::Server,
                origin: None,
                session: None,
                ttl_seconds: 1200,
                session_ends_at: None,
            },
            chrono::Utc::now(),
        )
        .unwrap();
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
    let request = w.app.client.get(w.app.url(path)).bearer_auth(&w.token);
    w.refused(
        &w.app.send(request, None).await,
        401,
        "missing_api_key",
        before,
    );
    let other = w.app.create_instance().await;
    w.refused(
        &w.call_from(path, &w.token, &other.api_key, None).await,
        403,
        "instance_mismatch",
        before,
    );

    // The product.
    w.refused(
        &w.call("/prod/billing/v1/x", &w.token).await,
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
            &w.token,
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
        &w.call("/prod/search/..%2F..%2Fadmin", &w.token).await,
        400,
        "invalid_path",
        before,
    );
    w.refused(
        &w.call("/prod/search/a/%2e%2e/b", &w.token).await,
        400,
        "invalid_path",
        before,
    );
}

async fn revocation_by_jti_sid_credential_and_instance(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
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
    w.refused(&w.call(path, &w.token).await, 401, "token_revoked", before);
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
    let w = world(spawn_app(backend).await).await;
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
    assert_eq!(w.introspect(&w.token).await.body["active"], json!(true));
    assert_eq!(w.app.admin("DELETE", &path, None).await.status, 200);

    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", &w.token).await,
        401,
        "token_revoked",
        before,
    );
    w.verify("/prod/search/v1/search", &w.token)
        .await
        .assert_error(401, "token_revoked");
    w.app
        .refresh(&w.created.api_key, &w.token, None)
        .await
        .assert_error(401, "token_revoked");
    let reply = w.introspect_as(&w.token, &second_secret).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"active": false}));
}

async fn rotation_grace_keeps_tokens_until_it_ends(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let path = format!(
        "/admin/v1/instances/{}/secrets/{}/rotate",
        w.created.id, w.created.secret_id
    );
    let reply = w
        .app
        .admin("POST", &path, Some(json!({"grace_seconds": 60})))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(w.call("/prod/search/v1/search", &w.token).await.status, 200);
    w.app.clock.advance(60);
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", &w.token).await,
        401,
        "token_revoked",
        before,
    );
}

async fn verify_answers_for_reverse_proxies(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    for uri in ["/prod/search/v1/search?q=a", "/search/v1/search"] {
        let reply = w.verify(uri, &w.token).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text);
        assert_eq!(
            reply.header("x-keybroker-instance"),
            Some(w.created.id.as_str())
        );
        assert_eq!(reply.header("x-keybroker-subject-kind"), Some("server"));
        assert_eq!(
            reply.header("x-keybroker-token-id"),
            claims_of(&w.token)["jti"].as_str()
        );
    }
    w.verify("/billing/x", &w.token)
        .await
        .assert_error(404, "unknown_product");
    // Behind a proxy that normalises paths, this names `search` but reaches `chat`.
    for sneaky in [
        "/search/../chat/v1/chat",
        "/prod/search/%2e%2e/chat/x",
        "/search/..%2Fchat/x",
    ] {
        w.verify(sneaky, &w.token)
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
        .bearer_auth(&w.token);
    w.app
        .send(request, None)
        .await
        .assert_error(400, "missing_original_uri");
    let request = w
        .app
        .client
        .get(w.app.url("/v1/verify"))
        .insert_header(("x-forwarded-uri", "/chat/v1/chat"))
        .insert_header(("x-forwarded-method", "post"))
        .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
        .bearer_auth(&w.token);
    let reply = w.app.send(request, None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["method"], json!("POST"));
    assert_eq!(reply.body["product"], json!("chat"));
    assert_eq!(w.upstream.hits(), 0, "verify proxies nothing");
}

async fn introspection(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let reply = w.introspect(&w.token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = claims_of(&w.token);
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
        .send(request, Some(Body::Json(json!({"token": w.token}))))
        .await;
    assert_eq!(reply.body["active"], json!(true));

    for bad in [
        "garbage".to_owned(),
        w.token[..w.token.len() - 3].to_owned(),
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
        .send(request, Some(Body::Json(json!({"token": w.token}))))
        .await;
    reply.assert_error(401, "invalid_credentials");
}

async fn logout_revokes_the_token_and_its_session(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let successor = w.app.refresh(&w.created.api_key, &w.token, None).await.body["accessToken"]
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
    let reply = revoke(w.token.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", &w.token).await,
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
    assert_eq!(revoke(w.token.clone()).await.status, 200);
    assert_eq!(revoke("garbage".into()).await.status, 200);
}

async fn refresh_reuse_window_returns_one_successor(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    let first = w.app.refresh(&w.created.api_key, &w.token, None).await;
    let second = w.app.refresh(&w.created.api_key, &w.token, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body["accessToken"], second.body["accessToken"],
        "two tabs, one successor"
    );
    // Both tabs' tokens work.
    let successor = first.body["accessToken"].as_str().unwrap();
    assert_eq!(w.call("/prod/search/x", successor).await.status, 200);
    assert_ne!(claims_of(successor)["jti"], claims_of(&w.token)["jti"]);

    // The store keeps no bearer token, and a revoked successor is not handed out.
    if w.app.backend == Backend::Redis {
        let redis = w.app.redis();
        let keys = redis.command(&["KEYS", "*succ*"]);
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
        .refresh(&w.created.api_key, &w.token, None)
        .await
        .assert_error(401, "token_revoked");
}

async fn upstream_down_is_502_and_slow_is_504(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.gateway.upstream_timeout_ms = 500).await;
    let w = world(app).await;
    let reply = w.call("/prod/search/slow", &w.token).await;
    reply.assert_error(504, "upstream_timeout");
    w.upstream.stop().await;
    let reply = w.call("/prod/search/v1/search", &w.token).await;
    reply.assert_error(502, "upstream_unavailable");
}

async fn deleting_the_instance_stops_its_tokens_at_once(backend: Backend) {
    let w = world(spawn_app(backend).await).await;
    // Warm the gateway's caches first.
    assert_eq!(w.call("/prod/search/v1/search", &w.token).await.status, 200);
    let path = format!("/admin/v1/instances/{}", w.created.id);
    assert_eq!(w.app.admin("DELETE", &path, None).await.status, 204);
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", &w.token).await,
        401,
        "invalid_credentials",
        before,
    );
    w.verify("/search/v1/search", &w.token)
        .await
        .assert_error(401, "invalid_credentials");
}

both_backends!(
    deleting_the_instance_stops_its_tokens_at_once,
    proxies_method_path_query_and_body,
    credentials_and_forged_identity_never_reach_the_upstream,
    each_check_refuses_in_order_without_reaching_the_upstream,
    revocation_by_jti_sid_credential_and_instance,
    deleting_a_secret_kills_its_tokens_everywhere,
    rotation_grace_keeps_tokens_until_it_ends,
    verify_answers_for_reverse_proxies,
    introspection,
    logout_revokes_the_token_and_its_session,
    refresh_reuse_window_returns_one_successor,
    upstream_down_is_502_and_slow_is_504,
);

/// Revocation through one broker process is honoured by another on the very
/// next request.
#[actix_web::test]
async fn a_revocation_through_one_process_holds_on_another() {
    let w = world(spawn_app(Backend::Redis).await).await;
    let peer = w.app.spawn_peer().await;
    let call_b = |token: &str| {
        let request = peer
            .client
            .get(peer.url("/prod/search/v1/search"))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(token);
        peer.send(request, None)
    };
    assert_eq!(call_b(&w.token).await.status, 200);
    let jti = claims_of(&w.token)["jti"].clone();
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
    w.refused(&call_b(&w.token).await, 401, "token_revoked", before);
}

/// Every key revocation writes carries a TTL no longer than it needs.
#[actix_web::test]
async fn revocation_keys_expire() {
    let w = world(spawn_app(Backend::Redis).await).await;
    let admin_path = format!("/admin/v1/instances/{}/revoke-tokens", w.created.id);
    let claims = claims_of(&w.token);
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
    let token = w
        .app
        .auth_with_secret(&w.created.api_key, &w.created.secret)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let keys = redis.command(&["KEYS", "*"]);
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

/// Redis down while serving: the gateway and forward-auth fail closed with
/// 503 and recover by themselves when Redis is back.
#[actix_web::test]
async fn gateway_fails_closed_while_redis_is_down() {
    let redis = RedisServer::start_persistent();
    let url = redis.url();
    let redis = std::sync::Arc::new(std::sync::Mutex::new(redis));
    let app = crate::helpers::spawn_app_on_redis(redis.clone(), url).await;
    let w = world(app).await;
    assert_eq!(w.call("/prod/search/v1/search", &w.token).await.status, 200);

    redis.lock().unwrap().stop();
    let before = w.upstream.hits();
    w.refused(
        &w.call("/prod/search/v1/search", &w.token).await,
        503,
        "store_unavailable",
        before,
    );
    w.verify("/search/v1/search", &w.token)
        .await
        .assert_error(503, "store_unavailable");

    redis.lock().unwrap().restart();
    let mut status = 0;
    for _ in 0..50 {
        status = w.call("/prod/search/v1/search", &w.token).await.status;
        if status == 200 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "the gateway did not recover after Redis came back"
    );
    assert_eq!(w.verify("/search/v1/search", &w.token).await.status, 200);
}

/// The fast path keeps per-process caches; a second process with warm caches
/// must still see every change made through the first on its very next request.
#[actix_web::test]
async fn a_warm_second_process_sees_every_change_at_once() {
    let w = world(spawn_app(Backend::Redis).await).await;
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
        assert_eq!(on_b("/prod/search/v1/search", &w.token).await.status, 200);
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
    on_b("/prod/search/v1/search", &w.token)
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
    on_b("/prod/search/v1/search", &w.token)
        .await
        .assert_error(404, "unknown_product");
    assert_eq!(on_b("/prod/chat/v1/chat", &w.token).await.status, 200);

    // A revokes every token of the instance: B refuses at once.
    w.app
        .admin(
            "POST",
            &format!("{instance}/revoke-tokens"),
            Some(json!({})),
        )
        .await;
    on_b("/prod/chat/v1/chat", &w.token)
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
    let fresh = w
        .app
        .auth_with_secret(&w.created.api_key, &w.created.secret)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
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
async fn feed_is(app: &TestApp, up: bool) {
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

async fn revoke_jti(w: &World, token: &str) {
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

/// Process B on A's Redis, whose revocation view holds `w.token` as not
/// revoked (and is seen to answer from it).
async fn peer_with_a_warm_view(w: &World) -> TestApp {
    let b = w.app.spawn_peer().await;
    feed_is(&b, true).await;
    for _ in 0..3 {
        let reply = w.introspect_on(&b, &w.token, &w.created.secret).await;
        assert_eq!(reply.body["active"], true, "{}", reply.text);
        assert_eq!(b.apis(&w.created.api_key, &w.token).await.status, 200);
    }
    let hits = metric(&b, "keybroker_revocation_view_hits_total").await;
    assert!(hits >= 4, "B's view was not in use ({hits} hits)");
    b
}

/// Introspection and `/v1/apis` answer from the local revocation view while
/// its feed is live; a revocation through another process reaches that view
/// through the feed.
#[actix_web::test]
async fn a_revocation_reaches_another_process_s_view_through_the_feed() {
    let w = world(spawn_app(Backend::Redis).await).await;
    let b = peer_with_a_warm_view(&w).await;
    let secret = w.created.secret.clone();

    revoke_jti(&w, &w.token).await;
    let revoked_at = std::time::Instant::now();
    loop {
        let reply = w.introspect_on(&b, &w.token, &secret).await;
        if reply.body["active"] == false {
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(1),
            "B still called the token active a second after its revocation"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    b.apis(&w.created.api_key, &w.token)
        .await
        .assert_error(401, "token_revoked");
}

/// The fallback: B's subscription is cut and cannot come back, so the
/// revocation A announces reaches nobody. B must still refuse the token on
/// its very next request, by reading Redis.
#[actix_web::test]
async fn a_revocation_holds_on_a_process_whose_feed_was_cut() {
    let w = world(spawn_app(Backend::Redis).await).await;
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

    revoke_jti(&w, &w.token).await;
    let misses = metric(&b, "keybroker_revocation_view_misses_total").await;
    let reply = w.introspect_on(&b, &w.token, &secret).await;
    assert_eq!(reply.body["active"], false, "{}", reply.text);
    b.apis(&w.created.api_key, &w.token)
        .await
        .assert_error(401, "token_revoked");
    b.refresh(&w.created.api_key, &w.token, None)
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
        let reply = w.introspect_on(&b, &w.token, &secret).await;
        assert_eq!(reply.body["active"], false, "{}", reply.text);
    }
    let hits_after = metric(&b, "keybroker_revocation_view_hits_total").await;
    assert!(hits_after > hits, "B's view was not trusted again");
}

/// A subscription that goes silent (no reset, no EOF) is noticed by its
/// missing ping answers, and the view stops being trusted.
#[actix_web::test]
async fn a_silent_feed_is_not_trusted() {
    let w = world(spawn_app(Backend::Redis).await).await;
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
