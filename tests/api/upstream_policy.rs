//! Where an upstream may point (issue 10, finding 12): not at link-local
//! addresses (cloud metadata) nor at the broker itself unless
//! `upstreams.allow_private` is set, and never through a numeric host form
//! that hides an address.

use serde_json::json;

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{spawn_app, spawn_app_with, Backend, Reply, TestApp};

/// The broker's own port.
fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

async fn create(w: &Fixture, slug: &str, upstream: &str) -> Reply {
    w.app
        .admin(
            "POST",
            &w.experience_path(""),
            Some(json!({"slug": slug, "upstream": upstream})),
        )
        .await
}

#[track_caller]
fn refused_because(reply: &Reply, upstream: &str, why: &str) {
    reply.assert_error(400, "invalid_request");
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(why),
        "{upstream}: the message should say {why:?}: {message}"
    );
}

/// Numeric spellings of an address that are not a canonical dotted quad.
const NUMERIC_FORMS: [&str; 6] = [
    "http://2852039166/latest/meta-data",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://0x7f.1:9/",
    "http://127.1:9/",
];

/// Link-local addresses and metadata names, in several spellings.
const LINK_LOCAL: [&str; 7] = [
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.169.254./",
    "http://[fe80::1]:8080/",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA./",
    "http://instance-data/latest",
];

async fn link_local_numeric_and_own_upstreams_are_refused(backend: Backend) {
    let w = Fixture::bare(spawn_app(backend).await).await;
    let port = port_of(&w.app);
    for upstream in LINK_LOCAL {
        refused_because(&create(&w, "x", upstream).await, upstream, "link-local");
    }
    for upstream in NUMERIC_FORMS {
        refused_because(&create(&w, "x", upstream).await, upstream, "dotted quad");
    }
    for upstream in [
        format!("http://127.0.0.1:{port}/prod/x"),
        format!("http://localhost:{port}"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://[::1]:{port}/"),
    ] {
        refused_because(
            &create(&w, "x", &upstream).await,
            &upstream,
            "broker itself",
        );
    }
    let listed = w.app.admin("GET", &w.experience_path(""), None).await;
    assert_eq!(listed.body["experiences"], json!([]), "nothing was created");

    // Loopback and private ranges stay allowed: the demo and sidecars use them.
    for (i, upstream) in [
        "http://127.0.0.1:9/search".to_owned(),
        format!("http://localhost:{}/", port.wrapping_add(1).max(1)),
        "http://10.0.0.5:8080/".to_owned(),
        "http://192.168.1.10/api".to_owned(),
        "http://[::1]:9/".to_owned(),
        "https://search.internal.example".to_owned(),
        "http://169.254.169.254.example.com/".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let reply = create(&w, &format!("ok{i}"), upstream).await;
        assert_eq!(reply.status, 201, "{upstream}: {}", reply.text);
    }

    // Every way the admin API takes an upstream is checked.
    let reply = w
        .app
        .admin(
            "PATCH",
            &w.experience_path("/ok0"),
            Some(json!({"upstream": "http://169.254.169.254/"})),
        )
        .await;
    refused_because(&reply, "PATCH", "link-local");
    let instance = format!("/admin/v1/instances/{}", w.created.id);
    let reply = w
        .app
        .admin(
            "PATCH",
            &instance,
            Some(json!({"products": {"ok0": {"upstream": "http://0xa9fea9fe/"}}})),
        )
        .await;
    refused_because(&reply, "PATCH instance", "dotted quad");
    let reply = w
        .app
        .admin(
            "POST",
            "/admin/v1/instances",
            Some(
                json!({"name": "n", "products": {"s": {"upstream": "http://[fe80::a9fe:a9fe]/"}}}),
            ),
        )
        .await;
    refused_because(&reply, "POST instance", "link-local");
    let reply = w.app.admin("GET", &w.experience_path("/ok0"), None).await;
    assert_eq!(reply.body["upstream"], json!("http://127.0.0.1:9/search"));
}

async fn allow_private_lets_link_local_and_own_upstreams_through(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upstreams.allow_private = true).await;
    let w = Fixture::bare(app).await;
    let port = port_of(&w.app);
    let own = format!("http://127.0.0.1:{port}/x");
    for (i, upstream) in LINK_LOCAL.iter().copied().chain([own.as_str()]).enumerate() {
        let reply = create(&w, &format!("p{i}"), upstream).await;
        assert_eq!(reply.status, 201, "{upstream}: {}", reply.text);
    }
    for upstream in NUMERIC_FORMS {
        refused_because(&create(&w, "x", upstream).await, upstream, "dotted quad");
    }
}

/// A DNS name is checked again when the gateway resolves it: `localhost` on
/// a peer's port passes the admin check on this broker, and the peer, which
/// finds its own address behind the name, refuses to proxy to itself.
async fn a_name_that_resolves_to_the_broker_itself_is_not_proxied(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let peer = w.app.spawn_peer().await;
    let upstream = format!("http://localhost:{}/loop", port_of(&peer));
    let reply = create(&w, "loop", &upstream).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.body["token"]["value"].as_str().unwrap().to_owned();

    // Through this broker the peer is an ordinary upstream: it answers 404.
    let reply = w.get_xt("/prod/loop/x", &token).await;
    reply.assert_error(404, "route_not_found");
    // Through the peer the name resolves to the peer itself.
    let request = peer
        .client
        .get(peer.url("/prod/loop/x"))
        .insert_header(("x-access-token", token.as_str()));
    peer.send(request, None)
        .await
        .assert_error(502, "upstream_unavailable");
}

/// An upstream stored while the policy allowed it (here by a broker with
/// `allow_private`) is held to the policy of the broker that proxies.
async fn a_stored_upstream_is_held_to_the_proxying_broker_s_policy(backend: Backend) {
    let open = spawn_app_with(backend, |s| s.upstreams.allow_private = true).await;
    let strict = open
        .spawn_peer_with(|s| s.upstreams.allow_private = false)
        .await;
    let w = Fixture::bare(open).await;
    let upstream = format!("http://127.0.0.1:{}/x", port_of(&strict));
    let reply = create(&w, "back", &upstream).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.body["token"]["value"].as_str().unwrap().to_owned();
    let request = strict
        .client
        .get(strict.url("/prod/back/y"))
        .insert_header(("x-access-token", token.as_str()));
    strict
        .send(request, None)
        .await
        .assert_error(502, "upstream_unavailable");
}

every_backend!(
    link_local_numeric_and_own_upstreams_are_refused,
    allow_private_lets_link_local_and_own_upstreams_through;
    shared:
    a_stored_upstream_is_held_to_the_proxying_broker_s_policy,
    a_name_that_resolves_to_the_broker_itself_is_not_proxied,
);
