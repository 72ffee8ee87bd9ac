//! Experiences: per-experience tokens, operations, allowed origins, CORS, rate
//! limits shared across processes, brute-force limits, usage and audit.

use keybroker::clock::Clock;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{
    spawn_app, spawn_app_with, Backend, Body, Created, Reply, TestApp, TestUpstream,
};

struct Setup {
    app: TestApp,
    upstream: TestUpstream,
    created: Created,
}

async fn setup(app: TestApp) -> Setup {
    let upstream = TestUpstream::start();
    let created = app
        .create_instance_with(json!({"name": "experiences"}))
        .await;
    Setup {
        app,
        upstream,
        created,
    }
}

impl Setup {
    fn path(&self, tail: &str) -> String {
        format!("/admin/v1/instances/{}/experiences{tail}", self.created.id)
    }

    /// Creates an experience; returns (body, token value).
    async fn experience(&self, body: Value) -> (Value, String) {
        let mut body = body;
        if body.get("upstream").is_none() {
            body["upstream"] = json!(format!(
                "{}/{}",
                self.upstream.base,
                body["slug"].as_str().unwrap()
            ));
        }
        let reply = self.app.admin("POST", &self.path(""), Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let token = reply.body["token"]["value"].as_str().unwrap().to_owned();
        (reply.body, token)
    }

    async fn call(
        &self,
        path: &str,
        token: &str,
        how: TokenHeader,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.app.client.get(self.app.url(path));
        request = match how {
            TokenHeader::AccessToken => request.insert_header(("x-access-token", token)),
            TokenHeader::Bearer => request.bearer_auth(token),
        };
        for (name, value) in extra {
            request = request.insert_header((*name, *value));
        }
        self.app.send(request, None).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(path, token, TokenHeader::AccessToken, &[]).await
    }
}

#[derive(Clone, Copy)]
enum TokenHeader {
    AccessToken,
    Bearer,
}

/// Moves the clock to one second past the next minute boundary, so that a test
/// of per-minute counting does not straddle two windows.
fn start_of_a_minute(app: &TestApp) {
    let ms = app.clock.now().timestamp_millis();
    app.clock
        .advance_millis(60_000 - ms.rem_euclid(60_000) + 1_000);
}

async fn experience_token_works_on_its_experience_only(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let (_, chat_token) = s.experience(json!({"slug": "chat", "kind": "chat"})).await;
    assert!(token.starts_with("kb_xt_"));
    assert_eq!(body["token"]["status"], json!("active"));
    assert!(body["curl"].as_str().unwrap().contains(&token));

    for how in [TokenHeader::AccessToken, TokenHeader::Bearer] {
        let reply = s.call("/prod/search/v1/search?q=x", &token, how, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let seen = s.upstream.last();
        assert_eq!(seen.path, "/search/v1/search");
        assert_eq!(seen.header("x-keybroker-subject-kind"), Some("experience"));
        assert_eq!(
            seen.header("x-keybroker-instance"),
            Some(s.created.id.as_str())
        );
        assert_eq!(
            seen.header("x-keybroker-token-id"),
            body["token"]["id"].as_str()
        );
        assert!(seen.header("x-access-token").is_none() && seen.header("authorization").is_none());
        assert!(!seen.headers.iter().any(|(_, v)| v.contains(&token)));
    }
    let before = s.upstream.hits();
    for how in [TokenHeader::AccessToken, TokenHeader::Bearer] {
        s.call("/prod/chat/v1/chat", &token, how, &[])
            .await
            .assert_error(403, "experience_mismatch");
        s.call("/prod/search/v1/search", &chat_token, how, &[])
            .await
            .assert_error(403, "experience_mismatch");
    }
    // Unknown or malformed tokens, and another instance's API key.
    s.get(
        "/prod/search/v1/search",
        keybroker::domain::credential::ExperienceToken::generate().expose(),
    )
    .await
    .assert_error(401, "invalid_token");
    s.get("/prod/search/v1/search", "kb_xt_short")
        .await
        .assert_error(401, "invalid_token");
    let other = s.app.create_instance().await;
    s.call(
        "/prod/search/v1/search",
        &token,
        TokenHeader::AccessToken,
        &[("x-inbenta-key", &other.api_key)],
    )
    .await
    .assert_error(403, "instance_mismatch");
    assert_eq!(
        s.upstream.hits(),
        before,
        "refused calls never reach the upstream"
    );
}

async fn masked_everywhere_after_creation(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    for reply in [
        s.app.admin("GET", &s.path(""), None).await,
        s.app.admin("GET", &s.path("/search"), None).await,
        s.app
            .admin(
                "GET",
                &format!("/admin/v1/instances/{}", s.created.id),
                None,
            )
            .await,
    ] {
        assert_eq!(reply.status, 200);
        assert!(
            reply.body.to_string().find("value").is_none(),
            "{}",
            reply.text
        );
        // No run of more than 10 characters of the token appears anywhere.
        for start in 0..token.len() - 11 {
            assert!(
                !reply.text.contains(&token[start..start + 11]),
                "{}",
                reply.text
            );
        }
    }
    let view = s.app.admin("GET", &s.path("/search"), None).await.body;
    let masked = view["token"]["masked"].as_str().unwrap();
    assert_eq!(masked.chars().filter(|c| *c != '…').count(), 20);
    for field in [
        "slug",
        "kind",
        "upstream",
        "allowed_origins",
        "operations",
        "rate_limit_per_minute",
        "daily_cap",
        "token",
    ] {
        assert!(view.get(field).is_some(), "{field} missing from {view}");
    }
    assert_eq!(
        view["operations"],
        json!(["search", "autocomplete", "documents", "summarise"])
    );
    assert_eq!(view["rate_limit_per_minute"], json!(60));
}

async fn regenerate_without_grace_kills_the_old_token_at_once(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, old) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    assert_eq!(s.get("/prod/search/v1/search", &old).await.status, 200);
    let reply = s
        .app
        .admin("POST", &s.path("/search/regenerate-token"), Some(json!({})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let new = reply.body["token"]["value"].as_str().unwrap().to_owned();
    assert!(reply.body["curl"].as_str().unwrap().contains(&new));
    assert_eq!(reply.body["previous_token"]["status"], json!("revoked"));
    let before = s.upstream.hits();
    s.get("/prod/search/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.upstream.hits(), before);
    let fresh = s.get("/prod/search/v1/search", &new).await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.header("deprecation").is_none());
}

async fn regenerate_with_grace_keeps_both_until_it_ends(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, old) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let reply = s
        .app
        .admin(
            "POST",
            &s.path("/search/regenerate-token"),
            Some(json!({"grace_seconds": 60})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["previous_token"]["status"], json!("expiring"));
    let new = reply.body["token"]["value"].as_str().unwrap().to_owned();

    let with_old = s.get("/prod/search/v1/search", &old).await;
    assert_eq!(with_old.status, 200);
    assert_eq!(with_old.header("deprecation"), Some("true"));
    assert!(with_old.header("sunset").is_some());
    let with_new = s.get("/prod/search/v1/search", &new).await;
    assert_eq!(with_new.status, 200);
    assert!(with_new.header("deprecation").is_none());

    s.app.clock.advance(60);
    s.get("/prod/search/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.get("/prod/search/v1/search", &new).await.status, 200);
}

async fn operations_follow_the_kind(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, search) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let (_, chat) = s.experience(json!({"slug": "chat", "kind": "chat"})).await;
    let (_, custom) = s
        .experience(json!({"slug": "custom", "kind": "custom"}))
        .await;
    for op in ["search", "autocomplete", "documents/42", "summarise"] {
        let reply = s.get(&format!("/prod/search/v1/{op}"), &search).await;
        assert_eq!(reply.status, 200, "{op}: {}", reply.text);
        s.get(&format!("/prod/chat/v1/{op}"), &chat)
            .await
            .assert_error(403, "operation_not_allowed");
    }
    for op in ["chat", "sessions/7"] {
        assert_eq!(
            s.get(&format!("/prod/chat/v1/{op}"), &chat).await.status,
            200,
            "{op}"
        );
        s.get(&format!("/prod/search/v1/{op}"), &search)
            .await
            .assert_error(403, "operation_not_allowed");
    }
    assert_eq!(
        s.get("/prod/custom/v3/anything/at/all", &custom)
            .await
            .status,
        200
    );
    // An explicit list replaces the kind's defaults.
    let reply = s
        .app
        .admin(
            "PATCH",
            &s.path("/search"),
            Some(json!({"operations": ["search"]})),
        )
        .await;
    assert_eq!(reply.body["operations"], json!(["search"]));
    s.get("/prod/search/v1/autocomplete", &search)
        .await
        .assert_error(403, "operation_not_allowed");
    // Access tokens obey the same operations.
    let reply = s
        .app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await;
    let access = reply.body["accessToken"].as_str().unwrap().to_owned();
    let call = |path: &str| {
        let request = s
            .app
            .client
            .get(s.app.url(path))
            .insert_header(("x-inbenta-key", s.created.api_key.as_str()))
            .bearer_auth(&access);
        s.app.send(request, None)
    };
    assert_eq!(call("/prod/chat/v1/chat").await.status, 200);
    call("/prod/chat/v1/search")
        .await
        .assert_error(403, "operation_not_allowed");
}

async fn allowed_origins_and_cors(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "allowed_origins": ["https://shop.example.com", "https://*.example.org"]}))
        .await;
    let (_, open) = s
        .experience(json!({"slug": "open", "kind": "custom"}))
        .await;

    let preflight = |path: &'static str, origin: &'static str| {
        let request = s
            .app
            .client
            .request(awc::http::Method::OPTIONS, s.app.url(path))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "GET"))
            .insert_header(("access-control-request-headers", "x-access-token"));
        s.app.send(request, None)
    };
    let allowed = preflight("/prod/search/v1/search", "https://shop.example.com").await;
    assert_eq!(allowed.status, 204, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert!(allowed
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-access-token"));
    assert!(allowed
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    let wildcard = preflight("/prod/search/v1/search", "https://a.example.org").await;
    assert_eq!(wildcard.status, 204);
    let refused = preflight("/prod/search/v1/search", "https://evil.example").await;
    refused.assert_error(403, "origin_not_allowed");
    assert!(refused.header("access-control-allow-origin").is_none());
    let any = preflight("/prod/open/v1/x", "https://evil.example").await;
    assert_eq!(any.status, 204, "empty allowed_origins allows every origin");

    let from = |origin: &'static str| {
        let request = s
            .app
            .client
            .get(s.app.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", token.as_str()))
            .insert_header(("origin", origin));
        s.app.send(request, None)
    };
    let ok = from("https://shop.example.com").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert!(ok.header("vary").unwrap().contains("Origin"));
    let before = s.upstream.hits();
    let bad = from("https://evil.example").await;
    bad.assert_error(403, "origin_not_allowed");
    assert!(bad.header("access-control-allow-origin").is_none());
    assert_eq!(s.upstream.hits(), before);
    // A refusal is readable by an origin the preflight allows (so that a page
    // can see 401 and act on it), and not by one it refuses.
    let unknown = keybroker::domain::credential::ExperienceToken::generate();
    let refused = |origin: &'static str| {
        let request = s
            .app
            .client
            .get(s.app.url("/prod/search/v1/search"))
            .insert_header(("x-access-token", unknown.expose()))
            .insert_header(("origin", origin));
        s.app.send(request, None)
    };
    let readable = refused("https://shop.example.com").await;
    readable.assert_error(401, "invalid_token");
    assert_eq!(
        readable.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let opaque = refused("https://evil.example").await;
    opaque.assert_error(401, "invalid_token");
    assert!(opaque.header("access-control-allow-origin").is_none());

    // No Origin: server to server, not subject to CORS.
    let server = s.get("/prod/search/v1/search", &token).await;
    assert_eq!(server.status, 200);
    assert!(server.header("access-control-allow-origin").is_none());
    // Empty list: any origin.
    let reply = s
        .call(
            "/prod/open/v1/x",
            &open,
            TokenHeader::AccessToken,
            &[("origin", "https://anyone.example")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://anyone.example")
    );

    // Preflight on /v1/auth follows domain keys.
    let (_, _, _) = s
        .app
        .add_domain_key(&s.created.id, &["app.example.net"])
        .await;
    assert_eq!(
        preflight("/v1/auth", "https://app.example.net")
            .await
            .status,
        204
    );
    preflight("/v1/auth", "https://other.example.net")
        .await
        .assert_error(403, "origin_not_allowed");
}

async fn experience_tokens_never_open_other_doors(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    s.app
        .auth_with_secret(&s.created.api_key, &token)
        .await
        .assert_error(401, "invalid_credentials");
    s.app
        .auth_with_domain_key(&s.created.api_key, &token, Some("https://example.com"))
        .await
        .assert_error(401, "invalid_credentials");
    s.app
        .refresh(&s.created.api_key, &token, None)
        .await
        .assert_error(401, "invalid_token");
    s.app
        .apis(&s.created.api_key, &token)
        .await
        .assert_error(401, "invalid_token");
    for (method, path) in [
        ("GET", "/admin/v1/instances".to_owned()),
        ("DELETE", format!("/admin/v1/instances/{}", s.created.id)),
    ] {
        let m = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let request = s
            .app
            .client
            .request(m, s.app.url(&path))
            .bearer_auth(&token);
        s.app
            .send(request, None)
            .await
            .assert_error(403, "admin_token_required");
        let request = s
            .app
            .client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                s.app.url(&path),
            )
            .insert_header(("x-access-token", token.as_str()));
        s.app
            .send(request, None)
            .await
            .assert_error(401, "admin_auth_required");
    }
    assert_eq!(
        s.app
            .admin(
                "GET",
                &format!("/admin/v1/instances/{}", s.created.id),
                None
            )
            .await
            .status,
        200
    );
}

async fn experience_admin_lifecycle(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(
            json!({"slug": "kb", "kind": "search", "rate_limit_per_minute": 10, "daily_cap": 1000}),
        )
        .await;
    let list = s.app.admin("GET", &s.path(""), None).await;
    assert_eq!(list.body["experiences"][0]["slug"], json!("kb"));
    // The products map is the same list.
    let instance = s
        .app
        .admin(
            "GET",
            &format!("/admin/v1/instances/{}", s.created.id),
            None,
        )
        .await;
    assert_eq!(instance.body["products"]["kb"]["daily_cap"], json!(1000));
    let auth = s
        .app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await;
    assert_eq!(auth.body["apis"]["kb"], json!(s.app.url("/prod/kb")));

    let patched = s
        .app
        .admin(
            "PATCH",
            &s.path("/kb"),
            Some(json!({"daily_cap": null, "allowed_origins": ["https://x.example.com"]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["daily_cap"], Value::Null);
    assert_eq!(patched.body["rate_limit_per_minute"], json!(10));
    assert_eq!(
        patched.body["allowed_origins"],
        json!(["https://x.example.com"])
    );

    let duplicate = s
        .app
        .admin(
            "POST",
            &s.path(""),
            Some(json!({"slug": "kb", "upstream": "http://a"})),
        )
        .await;
    duplicate.assert_error(409, "already_exists");
    // What GET shows of products, PATCH takes back unchanged.
    let products = instance.body["products"].clone();
    assert!(products["kb"].get("token_id").is_none(), "{products}");
    let round_trip = s
        .app
        .admin(
            "PATCH",
            &format!("/admin/v1/instances/{}", s.created.id),
            Some(json!({"products": products})),
        )
        .await;
    assert_eq!(round_trip.status, 200, "{}", round_trip.text);
    assert_eq!(
        s.get("/prod/kb/v1/search", &token).await.status,
        200,
        "the token survives a round trip"
    );
    for (body, why) in [
        (json!({"slug": "Bad Slug", "upstream": "http://a"}), "slug"),
        (json!({"slug": "x", "upstream": "ftp://a"}), "upstream"),
        (
            json!({"slug": "x", "upstream": "http://a", "kind": "video"}),
            "kind",
        ),
        (
            json!({"slug": "x", "upstream": "http://a", "allowed_origins": ["http://evil.com"]}),
            "origin",
        ),
        (
            json!({"slug": "x", "upstream": "http://a", "rate_limit_per_minute": 0}),
            "limit",
        ),
        (
            json!({"slug": "x", "upstream": "http://a", "daily_cap": 0}),
            "cap",
        ),
        (
            json!({"slug": "x", "upstream": "http://a", "operations": []}),
            "operations",
        ),
        (json!({"slug": "x"}), "no upstream"),
    ] {
        let reply = s.app.admin("POST", &s.path(""), Some(body)).await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.text);
    }
    assert_eq!(
        s.app.admin("GET", &s.path(""), None).await.body["experiences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.app
        .admin("GET", &s.path("/nope"), None)
        .await
        .assert_error(404, "not_found");

    assert_eq!(
        s.app.admin("DELETE", &s.path("/kb"), None).await.status,
        204
    );
    s.get("/prod/kb/v1/search", &token)
        .await
        .assert_error(404, "unknown_product");
    s.app
        .admin("GET", &s.path("/kb"), None)
        .await
        .assert_error(404, "not_found");
    // A new experience of the same slug does not bring the old token back.
    let (_, new_token) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    s.get("/prod/kb/v1/search", &token)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.get("/prod/kb/v1/search", &new_token).await.status, 200);
}

async fn daily_cap_trips_on_its_own(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 100, "daily_cap": 3}))
        .await;
    for _ in 0..3 {
        assert_eq!(s.get("/prod/search/v1/search", &token).await.status, 200);
    }
    let reply = s.get("/prod/search/v1/search", &token).await;
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
    let s = setup(spawn_app_with(backend, |c| c.limits.auth_failures_per_ip_per_minute = 3).await)
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

async fn usage_and_audit_follow_traffic(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    let xt_id = body["token"]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        s.get("/prod/search/v1/search", &token).await;
    }
    s.app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await;
    s.app
        .auth_with_secret(&s.created.api_key, "kb_sk_wrong")
        .await;
    s.app
        .admin(
            "POST",
            &s.path("/search/regenerate-token"),
            Some(json!({"grace_seconds": 5})),
        )
        .await;

    let usage = s
        .app
        .admin(
            "GET",
            &format!("/admin/v1/instances/{}/usage", s.created.id),
            None,
        )
        .await;
    assert_eq!(usage.status, 200, "{}", usage.text);
    let of = |id: &str| {
        usage.body["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["credential_id"] == json!(id))
            .cloned()
            .unwrap_or_else(|| panic!("no usage for {id}: {}", usage.text))
    };
    let xt = of(&xt_id);
    assert_eq!(xt["requests"], json!(2));
    assert_eq!(xt["rate_limited"], json!(1));
    assert!(xt["last_used_at"].is_string());
    let secret = of(&s.created.secret_id);
    assert_eq!(secret["auth_ok"], json!(1));
    assert_eq!(of("unknown")["auth_failed"], json!(1));

    let audit = s
        .app
        .admin(
            "GET",
            &format!("/admin/v1/instances/{}/audit?limit=2", s.created.id),
            None,
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["action"],
        json!("experience.regenerate_token"),
        "newest first"
    );
    assert_eq!(entries[0]["actor"], json!("admin"));
    assert_eq!(entries[1]["action"], json!("auth.failed"));
    assert_eq!(entries[1]["reason"], json!("invalid_credentials"));
    assert!(entries[1]["ip"].is_string());
    let total = audit.body["total"].as_u64().unwrap();
    assert!(total >= 4, "{}", audit.text);
    assert_eq!(audit.body["next_offset"], json!(2));
    let rest = s
        .app
        .admin(
            "GET",
            &format!(
                "/admin/v1/instances/{}/audit?offset=2&limit=200",
                s.created.id
            ),
            None,
        )
        .await;
    let actions: Vec<&str> = rest.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"experience.create") && actions.contains(&"instance.create"),
        "{actions:?}"
    );
    s.app
        .admin(
            "GET",
            &format!("/admin/v1/instances/{}/audit?limit=x", s.created.id),
            None,
        )
        .await
        .assert_error(400, "invalid_query");
}

/// Deleting an experience revokes its token. An experience created again under
/// the same slug has a new token, and the old one (which the gateway has seen
/// and cached) stays dead.
async fn a_recreated_experience_does_not_revive_the_old_token(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let body = json!({"slug": "kb", "kind": "search"});
    let (_, old) = s.experience(body.clone()).await;
    assert_eq!(s.get("/prod/kb/v1/search", &old).await.status, 200);
    assert_eq!(
        s.app.admin("DELETE", &s.path("/kb"), None).await.status,
        204
    );
    let (_, new) = s.experience(body).await;

    let before = s.upstream.hits();
    s.get("/prod/kb/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.upstream.hits(), before, "the upstream was reached");
    assert_eq!(s.get("/prod/kb/v1/search", &new).await.status, 200);
}

both_backends!(
    a_recreated_experience_does_not_revive_the_old_token,
    experience_token_works_on_its_experience_only,
    masked_everywhere_after_creation,
    regenerate_without_grace_kills_the_old_token_at_once,
    regenerate_with_grace_keeps_both_until_it_ends,
    operations_follow_the_kind,
    allowed_origins_and_cors,
    experience_tokens_never_open_other_doors,
    experience_admin_lifecycle,
    daily_cap_trips_on_its_own,
    brute_force_on_auth_is_limited,
    usage_and_audit_follow_traffic,
);

/// Experience-token records go only with their instance, and then the
/// instance refuses first. Should a record be missing anyway, its token is
/// refused, not taken for one that was never revoked.
#[actix_web::test]
async fn an_experience_token_without_its_record_is_refused() {
    let s = setup(spawn_app(Backend::Redis).await).await;
    let (body, token) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    assert_eq!(s.get("/prod/kb/v1/search", &token).await.status, 200);
    s.app.redis().delete_the_key_matching(&format!(
        "*:{{{}}}:cred:{}",
        s.created.id,
        body["token"]["id"].as_str().unwrap()
    ));

    let before = s.upstream.hits();
    s.get("/prod/kb/v1/search", &token)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(s.upstream.hits(), before, "the upstream was reached");
}

/// Limit 5/min, two broker processes on one Redis: the 6th request in the
/// minute is refused whichever process gets it; another IP has its own count.
#[actix_web::test]
async fn rate_limit_is_shared_by_processes() {
    let app = spawn_app_with(Backend::Redis, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let peer = app.spawn_peer().await;
    let s = setup(app).await;
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
    let s = setup(spawn_app(Backend::Memory).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    for ip in ["1.1.1.1", "2.2.2.2"] {
        assert_eq!(
            s.call(
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
    s.call(
        "/prod/search/v1/search",
        &token,
        TokenHeader::AccessToken,
        &[("x-forwarded-for", "3.3.3.3")],
    )
    .await
    .assert_error(429, "rate_limited");
}

/// A body sent with an experience token reaches the upstream intact.
#[actix_web::test]
async fn experience_calls_carry_bodies() {
    let s = setup(spawn_app(Backend::Memory).await).await;
    let (_, token) = s.experience(json!({"slug": "chat", "kind": "chat"})).await;
    let request = s
        .app
        .client
        .post(s.app.url("/prod/chat/v1/chat"))
        .insert_header(("x-access-token", token.as_str()));
    let reply = s
        .app
        .send(request, Some(Body::Json(json!({"message": "hello"}))))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(s.upstream.last().body, br#"{"message":"hello"}"#);
}

/// IPv6 clients are counted by their /64: rotating addresses inside one
/// subscriber's block buys no new budget.
#[actix_web::test]
async fn ipv6_clients_share_their_64() {
    let app = spawn_app_with(Backend::Memory, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    let s = setup(app).await;
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
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        auth_from(ip, target.api_key.clone(), wrong.expose().to_owned())
            .await
            .assert_error(401, "invalid_credentials");
    }
    let reply = auth_from(
        "198.51.100.4",
        target.api_key.clone(),
        target.secret.clone(),
    )
    .await;
    reply.assert_error(429, "too_many_failures");
    assert_eq!(reply.body["error"]["limit"], json!("auth_failures"));
    let untouched = auth_from("198.51.100.4", other.api_key.clone(), other.secret.clone()).await;
    assert_eq!(untouched.status, 200, "{}", untouched.text);
}
