//! The Redis Cluster backend where it differs from one node (SPEC §13): a
//! primary's failover under load, and broker processes that reach the
//! cluster through different nodes. (The rest of the suite runs on the
//! cluster too: see `every_backend!` in `helpers.rs`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fixture::{start_of_a_minute, Fixture};
use crate::helpers::{
    claims_of, spawn_app_on, spawn_app_with, Backend, SharedStore, TestApp, ADMIN_TOKEN,
};
use crate::redis_cluster::{RedisCluster, NODE_TIMEOUT_MS};

/// What a request of the load or writer thread got.
#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    what: &'static str,
    status: u16,
    reason: String,
}

/// What the threads share: the answers, the writes the broker acknowledged
/// (secrets by value, revoked tokens), and when to stop.
#[derive(Default)]
struct Run {
    answers: Mutex<Vec<Answer>>,
    secrets: Mutex<Vec<String>>,
    revoked: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Run {
    fn record(&self, at: Instant, what: &'static str, status: u16, body: &Value) {
        let reason = body["error"]["reason"].as_str().unwrap_or("").to_owned();
        self.answers.lock().unwrap().push(Answer {
            at,
            what,
            status,
            reason,
        });
    }

    fn answers(&self, what: &str) -> Vec<Answer> {
        let answers = self.answers.lock().unwrap();
        answers.iter().filter(|a| a.what == what).cloned().collect()
    }
}

/// One request; (status, JSON body). A request the broker never answered
/// (status 0) fails the test like any status it must not send.
async fn send(request: awc::ClientRequest, body: Option<Value>) -> (u16, Value) {
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let Ok(mut response) = sent else {
        return (0, Value::Null);
    };
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Where the threads send their requests.
#[derive(Clone)]
struct Target {
    base: String,
    instance: String,
    api_key: String,
    secret: String,
    token: String,
}

/// The load: the fixture's token through the gateway, and each time one of
/// the tokens whose revocation was acknowledged, in turn.
async fn load(target: Target, run: Arc<Run>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let call = |token: &str| {
        client
            .get(format!("{}/prod/search/v1/search", target.base))
            .insert_header(("x-inbenta-key", target.api_key.as_str()))
            .bearer_auth(token)
    };
    let mut turn = 0;
    while !run.stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let (status, body) = send(call(&target.token), None).await;
        run.record(at, "live", status, &body);
        let revoked = {
            let revoked = run.revoked.lock().unwrap();
            (!revoked.is_empty()).then(|| revoked[turn % revoked.len()].clone())
        };
        if let Some(token) = revoked {
            turn += 1;
            let at = Instant::now();
            let (status, body) = send(call(&token), None).await;
            run.record(at, "revoked", status, &body);
        }
    }
}

/// The writer: a new secret, then a new token and its revocation, in a loop;
/// each acknowledged write is remembered.
async fn writer(target: Target, run: Arc<Run>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let admin = |path: String| {
        client
            .post(format!(
                "{}/admin/v1/instances/{}{path}",
                target.base, target.instance
            ))
            .bearer_auth(ADMIN_TOKEN)
    };
    while !run.stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let (status, body) = send(admin("/secrets".into()), None).await;
        run.record(at, "secret", status, &body);
        if status == 201 {
            let value = body["value"].as_str().expect("a secret's value");
            run.secrets.lock().unwrap().push(value.to_owned());
        }

        let at = Instant::now();
        let request = client
            .post(format!("{}/v1/auth", target.base))
            .insert_header(("x-inbenta-key", target.api_key.as_str()));
        let (status, body) = send(request, Some(json!({ "secret": target.secret }))).await;
        run.record(at, "auth", status, &body);
        let Some(token) = body["accessToken"].as_str() else {
            continue;
        };
        let at = Instant::now();
        let jti = claims_of(token)["jti"].clone();
        let (status, body) =
            send(admin("/revoke-tokens".into()), Some(json!({ "jti": jti }))).await;
        run.record(at, "revocation", status, &body);
        if status == 200 {
            run.revoked.lock().unwrap().push(token.to_owned());
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `task` on a thread of its own, with its own runtime and client.
fn on_a_thread<F>(task: impl FnOnce() -> F + Send + 'static) -> std::thread::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + 'static,
{
    std::thread::spawn(move || actix_web::rt::System::new().block_on(task()))
}

/// Every acknowledged secret opens a token and every acknowledged
/// revocation holds, on `app`.
async fn every_acknowledged_write_holds(app: &TestApp, w: &Fixture, run: &Run) {
    let secrets = run.secrets.lock().unwrap().clone();
    for secret in secrets {
        let reply = app.auth_with_secret(&w.created.api_key, &secret).await;
        assert_eq!(reply.status, 200, "an acknowledged secret: {}", reply.text);
    }
    let revoked = run.revoked.lock().unwrap().clone();
    for token in revoked {
        let request = app
            .client
            .get(app.url("/prod/search/v1/search"))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(&token);
        app.send(request, None)
            .await
            .assert_error(401, "token_revoked");
    }
}

/// A primary dies (SIGKILL) under load: the requests that need its slot
/// answer 503 until its replica takes over, none answers another error or
/// lets a revoked token through, all are served again within the node
/// timeout and five seconds, and no write acknowledged before or during
/// the failover is lost.
#[actix_web::test]
async fn a_primary_s_failover_under_load_loses_no_acknowledged_write() {
    let cluster = Arc::new(RedisCluster::start());
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let store = SharedStore::Cluster {
        cluster: cluster.clone(),
        prefix: prefix.clone(),
    };
    let w = Fixture::with_products(spawn_app_on(store, |_| {}).await).await;
    // The load is not to meet the product's rate limit.
    let upstream = format!("{}/api", w.upstream.base);
    let reply = w
        .app
        .admin(
            "PATCH",
            &format!("/admin/v1/instances/{}", w.created.id),
            Some(json!({"products": {"search": {"upstream": upstream, "rate_limit_per_minute": 1_000_000}}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let target = Target {
        base: w.app.address.clone(),
        instance: w.created.id.clone(),
        api_key: w.created.api_key.clone(),
        secret: w.created.secret.clone(),
        token: w.token().to_owned(),
    };
    let run = Arc::new(Run::default());
    let threads = [
        on_a_thread({
            let (target, run) = (target.clone(), run.clone());
            move || load(target, run)
        }),
        on_a_thread({
            let (target, run) = (target.clone(), run.clone());
            move || writer(target, run)
        }),
    ];

    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = (
        run.secrets.lock().unwrap().len(),
        run.revoked.lock().unwrap().len(),
    );
    let slot_key = format!("{prefix}:{{{}}}:instance", w.created.id);
    let killed = cluster.kill_primary_of(&slot_key);
    let killed_at = Instant::now();
    let recovered_by = killed_at + Duration::from_millis(NODE_TIMEOUT_MS + 5000);
    actix_web::rt::time::sleep_until((recovered_by + Duration::from_secs(1)).into()).await;
    let promoted = cluster.primary_of(&slot_key);
    assert_ne!(promoted, killed, "no replica took over the slot");
    // What was acknowledged so far holds on the promoted replica alone, as
    // a process with cold caches reads it.
    let cold = w.app.spawn_peer().await;
    every_acknowledged_write_holds(&cold, &w, &run).await;
    cold.stop().await;

    // Without a replica, the promoted primary cannot acknowledge a durable
    // write; the killed node comes back, as a supervisor would restart it,
    // and becomes that replica.
    cluster.restart(killed);
    let restarted_at = Instant::now();
    let deadline = restarted_at + Duration::from_secs(15);
    while !run
        .answers("secret")
        .iter()
        .any(|a| a.at > restarted_at && a.status == 201)
    {
        assert!(
            Instant::now() < deadline,
            "writes did not come back once the node rejoined"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    run.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a load thread panicked");
    }

    let live = run.answers("live");
    for a in &live {
        assert!(
            a.status == 200 || (a.status == 503 && a.reason == "store_unavailable"),
            "the gateway answered {} {} at {:?} after the kill",
            a.status,
            a.reason,
            a.at.checked_duration_since(killed_at)
        );
    }
    let late: Vec<&Answer> = live.iter().filter(|a| a.at >= recovered_by).collect();
    assert!(late.len() >= 10, "too little load after the failover");
    if let Some(a) = late.iter().find(|a| a.status != 200) {
        panic!(
            "{} {} at {:?} after the kill: later than the node timeout and 5 s",
            a.status,
            a.reason,
            a.at - killed_at
        );
    }
    for a in run.answers("revoked") {
        assert!(
            (a.status == 401 && a.reason == "token_revoked")
                || (a.status == 503 && a.reason == "store_unavailable"),
            "a token whose revocation was acknowledged got {} {}",
            a.status,
            a.reason
        );
    }
    for what in ["secret", "auth", "revocation"] {
        for a in run.answers(what) {
            assert!(
                matches!(a.status, 200 | 201)
                    || (a.status == 503 && a.reason == "store_unavailable"),
                "{what} answered {} {}",
                a.status,
                a.reason
            );
        }
    }
    assert!(
        before_kill.0 >= 3 && before_kill.1 >= 3,
        "too few writes before the kill: {before_kill:?}"
    );

    // On this process, and on a new one whose caches are cold.
    every_acknowledged_write_holds(&w.app, &w, &run).await;
    let peer = w.app.spawn_peer().await;
    every_acknowledged_write_holds(&peer, &w, &run).await;
    let unavailable = live.iter().filter(|a| a.status == 503).count();
    let last_503 = live
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.at.saturating_duration_since(killed_at))
        .max();
    eprintln!(
        "failover: {} gateway requests ({unavailable} answered 503, the last {last_503:?} after the kill), {} secrets and {} revocations acknowledged ({} and {} before the kill)",
        live.len(),
        run.secrets.lock().unwrap().len(),
        run.revoked.lock().unwrap().len(),
        before_kill.0,
        before_kill.1,
    );
}

/// Two broker processes that reach the cluster through different seed
/// nodes (so their revocation feeds hang on different nodes): a revocation
/// through A holds on B on its next request, on every route, and a rate
/// limit counts the requests of both.
#[actix_web::test]
async fn two_processes_on_different_nodes_share_revocations_and_limits() {
    let a = spawn_app_with(Backend::Cluster, |_| {}).await;
    let b = a
        .spawn_peer_with(|s| {
            let seeds = s.cluster_nodes().expect("cluster seeds");
            let reversed: Vec<String> = seeds.into_iter().rev().collect();
            s.store.redis_cluster_nodes =
                Some(keybroker::config::Sensitive::new(reversed.join(",")));
        })
        .await;
    let w = Fixture::with_products(a).await;
    let on_b = |path: &str, token: &str| {
        let request = b
            .client
            .get(b.url(path))
            .insert_header(("x-inbenta-key", w.created.api_key.as_str()))
            .bearer_auth(token);
        b.send(request, None)
    };
    assert_eq!(on_b("/prod/search/v1/search", w.token()).await.status, 200);
    assert_eq!(b.apis(&w.created.api_key, w.token()).await.status, 200);
    let reply = w
        .app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/revoke-tokens", w.created.id),
            Some(json!({"jti": claims_of(w.token())["jti"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    on_b("/prod/search/v1/search", w.token())
        .await
        .assert_error(401, "token_revoked");
    b.apis(&w.created.api_key, w.token())
        .await
        .assert_error(401, "token_revoked");
    let reply = w.introspect_on(&b, w.token(), &w.created.secret).await;
    assert_eq!(reply.body["active"], false, "{}", reply.text);

    let (_, token) = w
        .experience(json!({"slug": "limited", "kind": "search", "rate_limit_per_minute": 5}))
        .await;
    start_of_a_minute(&w.app);
    async fn call(on: &TestApp, token: &str) -> crate::helpers::Reply {
        let request = on
            .client
            .get(on.url("/prod/limited/v1/search"))
            .insert_header(("x-access-token", token));
        on.send(request, None).await
    }
    for i in 0..5 {
        let on = if i % 2 == 0 { &w.app } else { &b };
        let reply = call(on, &token).await;
        assert_eq!(reply.status, 200, "request {}: {}", i + 1, reply.text);
    }
    for on in [&b, &w.app] {
        call(on, &token).await.assert_error(429, "rate_limited");
    }
}
