//! A CORS preflight carries no credential, so anyone can send many: the index
//! that answers them costs the shared store one rebuild per process and TTL,
//! whatever the traffic, and an admin change patches it instead of dropping it.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{spawn_app_with, Backend, TestApp};

const INSTANCES: usize = 1000;

/// Commands Redis has run (on a cluster, its primaries), but for the ones a
/// broker sends on its own (the revocation feed's pings and subscription, a
/// cluster connection's look at the slot map) and ours (`INFO`).
fn commands(app: &TestApp) -> u64 {
    let info = app.redis().command(&["INFO", "commandstats"]);
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            if matches!(
                name,
                "ping"
                    | "info"
                    | "subscribe"
                    | "client|setinfo"
                    | "hello"
                    | "cluster|slots"
                    | "cluster|shards"
                    | "cluster|nodes"
                    | "readonly"
            ) {
                return None;
            }
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            calls.parse::<u64>().ok()
        })
        .sum()
}

async fn preflight(app: &TestApp, origin: &str) -> u16 {
    let request = app
        .client
        .request(awc::http::Method::OPTIONS, app.url("/v1/auth"))
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "POST"));
    app.send(request, None).await.status
}

/// On a cluster of its own: it counts every command its primaries run.
async fn concurrent_cold_preflights_cost_one_rebuild_and_changes_patch_it(backend: Backend) {
    let app = spawn_app_with(backend.own(), |s| s.domain_keys.propagation_seconds = 0).await;
    for i in 0..INSTANCES {
        let created = app
            .create_instance_with(json!({
                "name": format!("site {i}"),
                "products": {"search": {"upstream": "http://127.0.0.1:9/search"}},
            }))
            .await;
        let domain = format!("site{i}.example.com");
        app.add_domain_key(&created.id, &[domain.as_str()]).await;
    }

    // One cold preflight on a fresh process: what one rebuild costs.
    let first = app.spawn_peer().await;
    let before = commands(&app);
    assert_eq!(preflight(&first, "https://site7.example.com").await, 204);
    let rebuild = commands(&app) - before;
    assert!(
        rebuild >= INSTANCES as u64,
        "a rebuild reads every instance"
    );

    // 200 concurrent cold preflights on another fresh process.
    let second = app.spawn_peer().await;
    let before = commands(&app);
    let origins: Vec<String> = (0..200)
        .map(|i| format!("https://site{}.example.com", i * 5))
        .collect();
    let answers = join_all(origins.iter().map(|o| preflight(&second, o))).await;
    assert!(answers.iter().all(|&s| s == 204), "{answers:?}");
    let spent = commands(&app) - before;
    assert!(
        spent <= rebuild + rebuild / 10,
        "200 concurrent preflights cost {spent} commands; one rebuild costs {rebuild}"
    );

    // An admin change through the warm process patches its index: the new
    // domain is allowed at once, for far less than a rebuild.
    let created = second.create_instance().await;
    let before = commands(&app);
    second
        .add_domain_key(&created.id, &["fresh.example.net"])
        .await;
    assert_eq!(preflight(&second, "https://fresh.example.net").await, 204);
    let patched = commands(&app) - before;
    assert!(
        patched < rebuild / 10,
        "an admin change cost {patched} commands; a rebuild costs {rebuild}"
    );
    assert_eq!(preflight(&second, "https://unknown.example.net").await, 403);
}

crate::every_backend!(;
    shared:
    concurrent_cold_preflights_cost_one_rebuild_and_changes_patch_it,
);
