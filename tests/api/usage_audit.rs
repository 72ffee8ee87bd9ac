//! Usage counters and the audit log follow the traffic.

use keybroker::clock::Clock;
use serde_json::{json, Value};

use crate::every_backend;
use crate::fixture::{start_of_a_minute, Fixture};
use crate::helpers::{spawn_app, spawn_app_with, Backend};

async fn usage_and_audit_follow_traffic(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    let xt_id = body["token"]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        s.get_xt("/prod/search/v1/search", &token).await;
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
            &s.experience_path("/search/regenerate-token"),
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

/// Introspection authenticates its client with the instance's secret: its
/// failures are audited and count in the same brute-force limits as
/// `/v1/auth`, so it is no side door for guessing secrets.
async fn introspection_failures_are_limited_and_audited(backend: Backend) {
    let s = Fixture::with_products(
        spawn_app_with(backend, |c| c.limits.auth_failures_per_ip_per_minute = 3).await,
    )
    .await;
    start_of_a_minute(&s.app);
    let wrong = keybroker::domain::credential::Secret::generate();
    for _ in 0..3 {
        s.introspect_as(s.token(), wrong.expose())
            .await
            .assert_error(401, "invalid_credentials");
    }
    // The address has used its budget: introspection and /v1/auth both wait.
    s.introspect(s.token())
        .await
        .assert_error(429, "too_many_failures");
    s.app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await
        .assert_error(429, "too_many_failures");

    let audit = s
        .app
        .admin(
            "GET",
            &format!("/admin/v1/instances/{}/audit?limit=10", s.created.id),
            None,
        )
        .await;
    let failures = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == json!("introspect.failed"))
        .count();
    assert_eq!(failures, 3, "{}", audit.text);
}

/// Usage over time: counts land in the minute and hour of their use, per
/// credential and in total; the range and step are checked.
async fn usage_series_counts_per_minute_and_hour(backend: Backend) {
    let s = Fixture::bare(spawn_app(backend).await).await;
    let (body, token) = s
        .experience(json!({"slug": "search", "kind": "search", "rate_limit_per_minute": 2}))
        .await;
    start_of_a_minute(&s.app);
    let first_minute = s.app.clock.now().timestamp() / 60 * 60;
    let xt_id = body["token"]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        s.get_xt("/prod/search/v1/search", &token).await;
    }
    s.app
        .auth_with_secret(&s.created.api_key, &s.created.secret)
        .await;
    let usage = format!("/admin/v1/instances/{}/usage", s.created.id);
    // Reading the counters flushes them, so the next ones fall in a later step.
    assert_eq!(s.app.admin("GET", &usage, None).await.status, 200);
    s.app.clock.advance_millis(120_000);
    s.get_xt("/prod/search/v1/search", &token).await;
    let now = s.app.clock.now().timestamp();

    let series = s
        .app
        .admin(
            "GET",
            &format!(
                "{usage}/series?from={}&to={now}&step=minute",
                first_minute - 600
            ),
            None,
        )
        .await;
    assert_eq!(series.status, 200, "{}", series.text);
    assert_eq!(series.body["step"], json!("minute"));
    let buckets = series.body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{}", series.text);
    assert_eq!(buckets[0]["t"], json!(first_minute));
    assert_eq!(buckets[0]["credentials"][&xt_id]["requests"], json!(2));
    assert_eq!(buckets[0]["credentials"][&xt_id]["rate_limited"], json!(1));
    assert_eq!(
        buckets[0]["credentials"][&s.created.secret_id]["auth_ok"],
        json!(1)
    );
    assert_eq!(buckets[0]["total"]["requests"], json!(2));
    assert_eq!(buckets[0]["total"]["auth_ok"], json!(1));
    assert_eq!(buckets[1]["t"], json!(first_minute + 120));
    assert_eq!(buckets[1]["total"]["requests"], json!(1));

    let hours = s
        .app
        .admin(
            "GET",
            &format!("{usage}/series?from={}&to={now}&step=hour", now - 86_400),
            None,
        )
        .await;
    assert_eq!(hours.status, 200, "{}", hours.text);
    let total: i64 = hours.body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"]["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3, "{}", hours.text);

    s.app
        .admin("GET", &format!("{usage}/series?step=day"), None)
        .await
        .assert_error(400, "invalid_request");
    s.app
        .admin(
            "GET",
            &format!("{usage}/series?from={now}&to={}", now - 60),
            None,
        )
        .await
        .assert_error(400, "invalid_request");
}

/// Any range of unix seconds an i64 holds is answered: a range that ends
/// before what is kept is empty, with no overflow (which panicked the
/// worker, found by schemathesis) on the way.
async fn usage_series_takes_any_i64_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let series = format!("/admin/v1/instances/{}/usage/series", created.id);
    let (min, max) = (i64::MIN, i64::MAX);
    for query in [
        format!("to={min}"),
        format!("to={}", min + 1),
        format!("to={min}&step=hour"),
        format!("from={min}&to={min}"),
        format!("from={min}"),
        format!("from={min}&to={max}&step=hour"),
        format!("to={max}"),
    ] {
        let reply = app.admin("GET", &format!("{series}?{query}"), None).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert!(reply.body["buckets"].is_array(), "{query}: {}", reply.text);
    }
    let reply = app
        .admin("GET", &format!("{series}?from={max}&to={min}"), None)
        .await;
    reply.assert_error(400, "invalid_request");
}

/// Any offset a u64 holds reads past the end of the log: nothing, and no
/// overflow into a wrapped (negative, from-the-end) index or a panic.
async fn huge_audit_offsets_read_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let audit = |query: String| {
        let app = &app;
        let id = created.id.clone();
        async move {
            app.admin(
                "GET",
                &format!("/admin/v1/instances/{id}/audit?{query}"),
                None,
            )
            .await
        }
    };
    let first = audit("limit=200".into()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let total = first.body["total"].as_u64().unwrap();
    assert!(total >= 1, "{}", first.text);

    for offset in [
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
        (1 << 63) - 1,
        (1 << 63) - 2,
        u64::from(u32::MAX),
    ] {
        for limit in [1, 200] {
            let reply = audit(format!("offset={offset}&limit={limit}")).await;
            assert_eq!(reply.status, 200, "offset {offset}: {}", reply.text);
            assert_eq!(
                reply.body["entries"],
                json!([]),
                "offset {offset}: {}",
                reply.text
            );
            assert_eq!(reply.body["offset"], json!(offset), "{}", reply.text);
            assert_eq!(reply.body["total"], json!(total), "{}", reply.text);
            assert_eq!(reply.body["next_offset"], Value::Null, "{}", reply.text);
        }
    }
    // The last entry is still where it was.
    let last = audit(format!("offset={}&limit=200", total - 1)).await;
    assert_eq!(
        last.body["entries"].as_array().map(Vec::len),
        Some(1),
        "{}",
        last.text
    );
    // Past u64, the offset is not a number the API takes.
    audit("offset=18446744073709551616".into())
        .await
        .assert_error(400, "invalid_query");
}

every_backend!(
    usage_series_counts_per_minute_and_hour,
    usage_series_takes_any_i64_range,
    huge_audit_offsets_read_nothing,
    usage_and_audit_follow_traffic,
    introspection_failures_are_limited_and_audited,
);
