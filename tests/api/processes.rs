//! The real `keybroker` binary: start-up checks, the demo, and a restart on the
//! same Redis.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    claims_of, free_port, signing_key_pem, temp_dir, Backend, ADMIN_TOKEN, KEY_ENCRYPTION_KEY,
    PEPPER,
};
use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_keybroker");

pub(crate) struct Broker {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(envs: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `keybroker serve` expecting it to refuse to start; returns stderr.
fn refused(envs: &[(&str, String)]) -> String {
    let mut child = command(envs)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keybroker");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                !status.success(),
                "keybroker started although it should not"
            );
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("keybroker neither started nor refused in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_healthy(base: &str) {
    let client = awc::Client::default();
    // Generous: on a loaded two-core machine a cold start can take seconds.
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("keybroker at {base} did not become healthy");
}

/// `POST /v1/auth` with a secret on a broker process; the 200 body.
pub(crate) async fn exchange_secret(
    client: &awc::Client,
    base: &str,
    api_key: &str,
    secret: &str,
) -> serde_json::Value {
    let mut reply = client
        .post(format!("{base}/v1/auth"))
        .insert_header(("x-inbenta-key", api_key))
        .send_json(&json!({ "secret": secret }))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.body().await);
    reply.json().await.unwrap()
}

fn key_file() -> String {
    let dir = temp_dir("key");
    let path = dir.join("signing.pem");
    std::fs::write(&path, signing_key_pem()).unwrap();
    path.display().to_string()
}

pub(crate) fn production_env(port: u16, redis_url: String) -> Vec<(&'static str, String)> {
    vec![
        ("KEYBROKER_LISTEN", format!("127.0.0.1:{port}")),
        ("KEYBROKER_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        (
            "KEYBROKER_KEY_ENCRYPTION_KEY",
            KEY_ENCRYPTION_KEY.to_owned(),
        ),
        ("KEYBROKER_PEPPER", PEPPER.to_owned()),
        ("KEYBROKER_SIGNING_KEY_FILE", key_file()),
        ("KEYBROKER_REDIS_URL", redis_url),
    ]
}

/// The settings of a production broker on a store of `backend` (a new
/// `redis-server`, kept alive by the returned value, or a new key prefix on
/// the shared cluster).
fn env_on(backend: Backend) -> (Option<RedisServer>, Vec<(&'static str, String)>) {
    let port = free_port();
    match backend {
        Backend::Redis => {
            let redis = RedisServer::start();
            let env = production_env(port, redis.url());
            (Some(redis), env)
        }
        _ => {
            let mut env = production_env(port, String::new());
            env.retain(|(k, _)| *k != "KEYBROKER_REDIS_URL");
            env.push((
                "KEYBROKER_REDIS_CLUSTER_NODES",
                RedisCluster::shared().seeds(),
            ));
            env.push((
                "KEYBROKER_REDIS_KEY_PREFIX",
                format!("t{}", uuid::Uuid::new_v4().simple()),
            ));
            (None, env)
        }
    }
}

pub(crate) async fn start(envs: &[(&str, String)]) -> Broker {
    let port = envs
        .iter()
        .find(|(k, _)| *k == "KEYBROKER_LISTEN")
        .and_then(|(_, v)| v.rsplit(':').next())
        .unwrap()
        .to_owned();
    let child = command(envs)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keybroker");
    let base = format!("http://127.0.0.1:{port}");
    let broker = Broker { child, base };
    wait_healthy(&broker.base).await;
    broker
}

#[test]
fn start_up_refuses_missing_or_weak_settings() {
    let err = refused(&[("KEYBROKER_LISTEN", "127.0.0.1:0".into())]);
    assert!(err.contains("KEYBROKER_ADMIN_TOKEN"), "{err}");

    let err = refused(&[("KEYBROKER_ADMIN_TOKEN", "short".into())]);
    assert!(err.contains("too short"), "{err}");

    let err = refused(&[
        ("KEYBROKER_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("KEYBROKER_PEPPER", PEPPER.into()),
    ]);
    assert!(err.contains("KEYBROKER_SIGNING_KEY_FILE"), "{err}");

    let dir = temp_dir("badkey");
    let bad_key = dir.join("bad.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = refused(&[
        ("KEYBROKER_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("KEYBROKER_PEPPER", PEPPER.into()),
        ("KEYBROKER_SIGNING_KEY_FILE", bad_key.display().to_string()),
    ]);
    assert!(err.contains("Ed25519"), "{err}");

    // Nothing listens on this port: the Redis backend must refuse to start.
    let mut env = production_env(free_port(), format!("redis://127.0.0.1:{}/", free_port()));
    env.retain(|(k, _)| *k != "KEYBROKER_LISTEN");
    env.push(("KEYBROKER_LISTEN", "127.0.0.1:0".into()));
    let err = refused(&env);
    assert!(err.contains("Redis"), "{err}");

    // One store only: a Redis URL and cluster nodes together are refused.
    env.push((
        "KEYBROKER_REDIS_CLUSTER_NODES",
        format!("redis://127.0.0.1:{}", free_port()),
    ));
    let err = refused(&env);
    assert!(
        err.contains("KEYBROKER_REDIS_URL") && err.contains("KEYBROKER_REDIS_CLUSTER_NODES"),
        "{err}"
    );
}

async fn a_new_process_on_the_same_redis_keeps_every_credential(backend: Backend) {
    let (_redis, env) = env_on(backend);
    let client = awc::Client::default();

    let first = start(&env).await;
    let mut created = client
        .post(format!("{}/admin/v1/instances", first.base))
        .bearer_auth(ADMIN_TOKEN)
        .send_json(&json!({"name": "persisted", "products": {"search": {"upstream": "http://127.0.0.1:9"}}}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let secret = created["secret"]["value"].as_str().unwrap().to_owned();
    drop(first);

    let second = start(&env).await;
    let body = exchange_secret(&client, &second.base, &api_key, &secret).await;
    assert_eq!(
        body["apis"]["search"],
        json!(format!("{}/prod/search", second.base))
    );
    let mut list = client
        .get(format!("{}/admin/v1/instances", second.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["instances"][0]["name"], json!("persisted"));
}

#[actix_web::test]
async fn the_demo_works_end_to_end() {
    let port = free_port();
    let mut child = command(&[("KEYBROKER_LISTEN", format!("127.0.0.1:{port}"))])
        .args(["serve", "--demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keybroker --demo");
    let stdout = child.stdout.take().unwrap();
    let broker = Broker {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    // Read the banner, then keep draining stdout so the broker never writes
    // into a closed pipe.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sent {
                continue;
            }
            let done = line.starts_with("Public keys:");
            text.push_str(&line);
            text.push('\n');
            if done {
                let _ = sender.send(std::mem::take(&mut text));
                sent = true;
            }
        }
        if !sent {
            let _ = sender.send(text);
        }
    });
    let banner = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo printed no banner");
    let field = |label: &str| {
        banner
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.trim_start()[label.len()..].split_whitespace().next())
            .unwrap_or_else(|| panic!("{label} missing from the banner:\n{banner}"))
            .to_owned()
    };
    let (api_key, secret, domain_key) = (field("API key"), field("secret"), field("domain key"));
    assert!(banner.contains("curl"), "the banner shows curl commands");
    wait_healthy(&broker.base).await;

    let client = awc::Client::default();
    let body = exchange_secret(&client, &broker.base, &api_key, &secret).await;
    assert_eq!(body["expires_in"], json!(1200));
    assert!(body["apis"].as_object().is_some_and(|a| !a.is_empty()));
    let token = body["accessToken"].as_str().unwrap().to_owned();

    let mut reply = client
        .post(format!("{}/v1/auth", broker.base))
        .insert_header(("x-inbenta-key", api_key.as_str()))
        .insert_header(("origin", keybroker::demo::DEMO_ORIGIN))
        .send_json(&json!({"domain_key": domain_key}))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.body().await);

    let mut reply = client
        .post(format!("{}/v1/refreshToken", broker.base))
        .insert_header(("x-inbenta-key", api_key.as_str()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let refreshed: serde_json::Value = reply.json().await.unwrap();
    let new_token = refreshed["accessToken"].as_str().unwrap();
    assert_eq!(claims_of(new_token)["sid"], claims_of(&token)["sid"]);

    let reply = client
        .get(format!("{}/v1/apis", broker.base))
        .insert_header(("x-inbenta-key", api_key.as_str()))
        .bearer_auth(new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

/// `keybroker keys list|rotate` on the command line, against the ring a
/// running broker uses: the broker learns of the rotation without a restart.
async fn the_key_commands_rotate_the_ring_a_running_broker_uses(backend: Backend) {
    let (_redis, env) = env_on(backend);
    let broker = start(&env).await;
    let keys = |args: &[&str]| {
        let out = command(&env)
            .arg("keys")
            .args(args)
            .output()
            .expect("run keybroker keys");
        assert!(
            out.status.success(),
            "keybroker keys {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!text.contains("sealed") && !text.contains("PRIVATE"));
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON on stdout")
    };
    let listed = keys(&["list"]);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["keys"][0]["state"], json!("active"));

    let rotated = keys(&["rotate", "--publish-lead-seconds", "900"]);
    let kid = rotated["kid"].clone();
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2, "{rotated}");
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut reply = client
            .get(format!("{}/.well-known/jwks.json", broker.base))
            .send()
            .await
            .unwrap();
        let jwks: serde_json::Value = reply.json().await.unwrap();
        if jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broker never published {kid}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut listed = client
        .get(format!("{}/admin/v1/signing-keys", broker.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["audit"][0]["actor"], json!("cli"), "{listed}");
}

crate::every_backend!(;
    shared:
    a_new_process_on_the_same_redis_keeps_every_credential,
    the_key_commands_rotate_the_ring_a_running_broker_uses,
);
