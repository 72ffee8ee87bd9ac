//! Experiences: per-experience tokens, their operations, regeneration and
//! administration.

use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::{Fixture, TokenHeader};
use crate::helpers::{spawn_app, Backend, Body};

/// Deleting an experience revokes its token. An experience created again under
/// the same slug has a new token, and the old one (which the gateway has seen
/// and cached) stays dead.
async fn a_recreated_experience_does_not_revive_the_old_token(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let body = json!({"slug": "kb", "kind": "search"});
    let (_, old) = s.experience(body.clone()).await;
    assert_eq!(s.get_xt("/prod/kb/v1/search", &old).await.status, 200);
    assert_eq!(s.delete_experience("kb").await, 204);
    let (_, new) = s.experience(body).await;

    let before = s.upstream.hits();
    s.get_xt("/prod/kb/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.upstream.hits(), before, "the upstream was reached");
    assert_eq!(s.get_xt("/prod/kb/v1/search", &new).await.status, 200);
}

async fn experience_token_works_on_its_experience_only(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let (_, chat_token) = s.experience(json!({"slug": "chat", "kind": "chat"})).await;
    assert!(token.starts_with("kb_xt_"));
    assert_eq!(body["token"]["status"], json!("active"));
    assert!(body["curl"].as_str().unwrap().contains(&token));

    for how in [TokenHeader::AccessToken, TokenHeader::Bearer] {
        let reply = s
            .call_xt("/prod/search/v1/search?q=x", &token, how, &[])
            .await;
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
        s.call_xt("/prod/chat/v1/chat", &token, how, &[])
            .await
            .assert_error(403, "experience_mismatch");
        s.call_xt("/prod/search/v1/search", &chat_token, how, &[])
            .await
            .assert_error(403, "experience_mismatch");
    }
    // Unknown or malformed tokens, and another instance's API key.
    s.get_xt(
        "/prod/search/v1/search",
        keybroker::domain::credential::ExperienceToken::generate().expose(),
    )
    .await
    .assert_error(401, "invalid_token");
    s.get_xt("/prod/search/v1/search", "kb_xt_short")
        .await
        .assert_error(401, "invalid_token");
    let other = s.app.create_instance().await;
    s.call_xt(
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
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    for reply in [
        s.app.admin("GET", &s.experience_path(""), None).await,
        s.app
            .admin("GET", &s.experience_path("/search"), None)
            .await,
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
    let view = s
        .app
        .admin("GET", &s.experience_path("/search"), None)
        .await
        .body;
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
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, old) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    assert_eq!(s.get_xt("/prod/search/v1/search", &old).await.status, 200);
    let reply = s
        .app
        .admin(
            "POST",
            &s.experience_path("/search/regenerate-token"),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let new = reply.body["token"]["value"].as_str().unwrap().to_owned();
    assert!(reply.body["curl"].as_str().unwrap().contains(&new));
    assert_eq!(reply.body["previous_token"]["status"], json!("revoked"));
    let before = s.upstream.hits();
    s.get_xt("/prod/search/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.upstream.hits(), before);
    let fresh = s.get_xt("/prod/search/v1/search", &new).await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.header("deprecation").is_none());
}

async fn regenerate_with_grace_keeps_both_until_it_ends(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, old) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let reply = s
        .app
        .admin(
            "POST",
            &s.experience_path("/search/regenerate-token"),
            Some(json!({"grace_seconds": 60})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["previous_token"]["status"], json!("expiring"));
    let new = reply.body["token"]["value"].as_str().unwrap().to_owned();

    let with_old = s.get_xt("/prod/search/v1/search", &old).await;
    assert_eq!(with_old.status, 200);
    assert_eq!(with_old.header("deprecation"), Some("true"));
    assert!(with_old.header("sunset").is_some());
    let with_new = s.get_xt("/prod/search/v1/search", &new).await;
    assert_eq!(with_new.status, 200);
    assert!(with_new.header("deprecation").is_none());

    s.app.clock.advance(60);
    s.get_xt("/prod/search/v1/search", &old)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.get_xt("/prod/search/v1/search", &new).await.status, 200);
}

async fn operations_follow_the_kind(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, search) = s
        .experience(json!({"slug": "search", "kind": "search"}))
        .await;
    let (_, chat) = s.experience(json!({"slug": "chat", "kind": "chat"})).await;
    let (_, custom) = s
        .experience(json!({"slug": "custom", "kind": "custom"}))
        .await;
    for op in ["search", "autocomplete", "documents/42", "summarise"] {
        let reply = s.get_xt(&format!("/prod/search/v1/{op}"), &search).await;
        assert_eq!(reply.status, 200, "{op}: {}", reply.text);
        s.get_xt(&format!("/prod/chat/v1/{op}"), &chat)
            .await
            .assert_error(403, "operation_not_allowed");
    }
    for op in ["chat", "sessions/7"] {
        assert_eq!(
            s.get_xt(&format!("/prod/chat/v1/{op}"), &chat).await.status,
            200,
            "{op}"
        );
        s.get_xt(&format!("/prod/search/v1/{op}"), &search)
            .await
            .assert_error(403, "operation_not_allowed");
    }
    assert_eq!(
        s.get_xt("/prod/custom/v3/anything/at/all", &custom)
            .await
            .status,
        200
    );
    // An explicit list replaces the kind's defaults.
    let reply = s
        .app
        .admin(
            "PATCH",
            &s.experience_path("/search"),
            Some(json!({"operations": ["search"]})),
        )
        .await;
    assert_eq!(reply.body["operations"], json!(["search"]));
    s.get_xt("/prod/search/v1/autocomplete", &search)
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

async fn experience_tokens_never_open_other_doors(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
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
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, token) = s
        .experience(
            json!({"slug": "kb", "kind": "search", "rate_limit_per_minute": 10, "daily_cap": 1000}),
        )
        .await;
    let list = s.app.admin("GET", &s.experience_path(""), None).await;
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
            &s.experience_path("/kb"),
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
            &s.experience_path(""),
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
        s.get_xt("/prod/kb/v1/search", &token).await.status,
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
        let reply = s
            .app
            .admin("POST", &s.experience_path(""), Some(body))
            .await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.text);
    }
    assert_eq!(
        s.app.admin("GET", &s.experience_path(""), None).await.body["experiences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.app
        .admin("GET", &s.experience_path("/nope"), None)
        .await
        .assert_error(404, "not_found");

    assert_eq!(s.delete_experience("kb").await, 204);
    s.get_xt("/prod/kb/v1/search", &token)
        .await
        .assert_error(404, "unknown_product");
    s.app
        .admin("GET", &s.experience_path("/kb"), None)
        .await
        .assert_error(404, "not_found");
    // A new experience of the same slug does not bring the old token back.
    let (_, new_token) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    s.get_xt("/prod/kb/v1/search", &token)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(s.get_xt("/prod/kb/v1/search", &new_token).await.status, 200);
}

every_backend!(
    a_recreated_experience_does_not_revive_the_old_token,
    experience_token_works_on_its_experience_only,
    masked_everywhere_after_creation,
    regenerate_without_grace_kills_the_old_token_at_once,
    regenerate_with_grace_keeps_both_until_it_ends,
    operations_follow_the_kind,
    experience_tokens_never_open_other_doors,
    experience_admin_lifecycle;
    shared:
    an_experience_token_without_its_record_is_refused,
);

/// Experience-token records go only with their instance, and then the
/// instance refuses first. Should a record be missing anyway, its token is
/// refused, not taken for one that was never revoked.
async fn an_experience_token_without_its_record_is_refused(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    assert_eq!(s.get_xt("/prod/kb/v1/search", &token).await.status, 200);
    s.app.redis().delete_the_key_matching(&format!(
        "*:{{{}}}:cred:{}",
        s.created.id,
        body["token"]["id"].as_str().unwrap()
    ));

    let before = s.upstream.hits();
    s.get_xt("/prod/kb/v1/search", &token)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(s.upstream.hits(), before, "the upstream was reached");
}

/// A body sent with an experience token reaches the upstream intact.
#[actix_web::test]
async fn experience_calls_carry_bodies() {
    let s = Fixture::bare(spawn_app(Backend::Memory).await).await;
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
