//! A regeneration ends or shortens the grace of every older experience token,
//! the experience view lists every token still accepted, and `revoke-tokens`
//! can end one of them at once.

use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{spawn_app, Backend};

async fn regenerate(s: &Fixture, grace: u64) -> (String, Value) {
    let reply = s
        .app
        .admin(
            "POST",
            &s.experience_path("/kb/regenerate-token"),
            Some(json!({ "grace_seconds": grace })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let value = reply.body["token"]["value"].as_str().unwrap().to_owned();
    (value, reply.body)
}

async fn previous_ids(s: &Fixture) -> Vec<String> {
    let view = s.app.admin("GET", &s.experience_path("/kb"), None).await;
    assert_eq!(view.status, 200, "{}", view.text);
    view.body["previous_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn status_of(s: &Fixture, token: &str) -> u16 {
    s.get_xt("/prod/kb/v1/search", token).await.status
}

async fn a_later_regeneration_ends_every_older_grace(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (created, t1) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    let t1_id = created["token"]["id"].as_str().unwrap().to_owned();

    let (t2, body) = regenerate(&s, 3600).await;
    let t2_id = body["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&s, &t1).await, 200);
    assert_eq!(status_of(&s, &t2).await, 200);
    assert_eq!(previous_ids(&s).await, vec![t1_id.clone()]);

    // A second regeneration with a grace shortens, never extends.
    let (t3, body) = regenerate(&s, 60).await;
    assert_eq!(body["previous_tokens"].as_array().unwrap().len(), 2);
    let mut listed = previous_ids(&s).await;
    listed.sort();
    let mut expected = vec![t1_id.clone(), t2_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    s.app.clock.advance(61);
    for old in [&t1, &t2] {
        s.get_xt("/prod/kb/v1/search", old)
            .await
            .assert_error(401, "token_revoked");
    }
    assert_eq!(status_of(&s, &t3).await, 200);

    // With no grace, every older token dies on the next request.
    let (t4, _) = regenerate(&s, 3600).await;
    assert_eq!(status_of(&s, &t3).await, 200);
    let (t5, body) = regenerate(&s, 0).await;
    assert_eq!(body["previous_tokens"], json!([]));
    for old in [&t3, &t4] {
        s.get_xt("/prod/kb/v1/search", old)
            .await
            .assert_error(401, "token_revoked");
    }
    assert_eq!(status_of(&s, &t5).await, 200);
    assert!(previous_ids(&s).await.is_empty());
}

async fn revoke_tokens_ends_an_experience_token_at_once(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (_, t1) = s.experience(json!({"slug": "kb", "kind": "search"})).await;
    let (t2, body) = regenerate(&s, 3600).await;
    let t1_id = body["previous_token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&s, &t1).await, 200);

    let path = format!("/admin/v1/instances/{}/revoke-tokens", s.created.id);
    let reply = s
        .app
        .admin("POST", &path, Some(json!({ "experience_token": t1_id })))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["revoked"], json!("experience_token"));
    s.get_xt("/prod/kb/v1/search", &t1)
        .await
        .assert_error(401, "token_revoked");
    assert_eq!(status_of(&s, &t2).await, 200);
    assert!(previous_ids(&s).await.is_empty());

    s.app
        .admin(
            "POST",
            &path,
            Some(json!({ "experience_token": "cred_unknown" })),
        )
        .await
        .assert_error(404, "not_found");
    s.app
        .admin(
            "POST",
            &path,
            Some(json!({ "experience_token": t1_id, "jti": "x" })),
        )
        .await
        .assert_error(400, "invalid_request");
}

every_backend!(
    a_later_regeneration_ends_every_older_grace,
    revoke_tokens_ends_an_experience_token_at_once,
);
