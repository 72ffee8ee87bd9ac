//! Black-box harness: each test gets its own broker bound to port 0 and, for the
//! Redis backend, its own `redis-server` on a free port (`redis_server.rs`),
//! stopped when the test ends; for the cluster backend, a key prefix of its
//! own on the Redis Cluster the test binary shares (`redis_cluster.rs`).
//! Nothing is mocked.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use keybroker::clock::ManualClock;
use keybroker::config::{Sensitive, Settings};
use keybroker::startup::Application;
use serde_json::{json, Value};

use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef-not-a-secret";
pub const PEPPER: &str = "test-pepper-0123456789abcdef-0123456789";
/// Base64 of 32 bytes: the key-encryption key of every test's ring.
pub const KEY_ENCRYPTION_KEY: &str = "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// The shared Redis Cluster, under a key prefix of the test's own.
    Cluster,
    /// A Redis Cluster of the test's own, for a test that breaks it (cuts
    /// every subscription, pauses every node, counts every command).
    OwnCluster,
}

impl Backend {
    /// The backend for a test that changes its store for every client: a
    /// cluster of its own instead of the shared one.
    pub fn own(self) -> Backend {
        match self {
            Backend::Cluster => Backend::OwnCluster,
            other => other,
        }
    }
}

/// The store behind a test's brokers, as the test reaches it directly.
#[derive(Clone)]
pub enum SharedStore {
    Redis(Arc<std::sync::Mutex<RedisServer>>),
    Cluster {
        cluster: Arc<RedisCluster>,
        /// Isolates the test's keys, channel and ring on a shared cluster.
        prefix: String,
    },
}

impl SharedStore {
    /// A new store for `backend`: a new `redis-server`, a new key prefix on
    /// the shared cluster, or a new cluster; none for memory.
    pub fn new(backend: Backend) -> Option<SharedStore> {
        let prefix = || format!("t{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Memory => None,
            Backend::Redis => Some(SharedStore::Redis(Arc::new(std::sync::Mutex::new(
                RedisServer::start(),
            )))),
            Backend::Cluster => Some(SharedStore::Cluster {
                cluster: RedisCluster::shared(),
                prefix: prefix(),
            }),
            Backend::OwnCluster => Some(SharedStore::Cluster {
                cluster: Arc::new(RedisCluster::start()),
                prefix: prefix(),
            }),
        }
    }

    /// Points `settings` at this store.
    pub fn configure(&self, settings: &mut Settings) {
        match self {
            SharedStore::Redis(server) => {
                let url = server.lock().unwrap_or_else(|e| e.into_inner()).url();
                settings.store.redis_url = Some(Sensitive::new(url));
            }
            SharedStore::Cluster { cluster, prefix } => {
                settings.store.redis_cluster_nodes = Some(Sensitive::new(cluster.seeds()));
                settings.store.key_prefix = prefix.clone();
            }
        }
    }
}

/// Raw access to a test's store: one node, or every node of a cluster (see
/// [`RedisCluster::command`] for where each command goes).
pub enum RawRedis<'a> {
    Node(std::sync::MutexGuard<'a, RedisServer>),
    Cluster(&'a RedisCluster),
}

impl RawRedis<'_> {
    pub fn command(&self, args: &[&str]) -> String {
        match self {
            RawRedis::Node(server) => server.command(args),
            RawRedis::Cluster(cluster) => cluster.command(args),
        }
    }

    pub fn delete_the_key_matching(&self, pattern: &str) {
        match self {
            RawRedis::Node(server) => server.delete_the_key_matching(pattern),
            RawRedis::Cluster(cluster) => cluster.delete_the_key_matching(pattern),
        }
    }

    /// The one server; a test that stops or restarts "the" Redis has no
    /// counterpart on a cluster (its failover test is `cluster.rs`).
    pub fn node(&mut self) -> &mut RedisServer {
        match self {
            RawRedis::Node(server) => server,
            RawRedis::Cluster(_) => panic!("this test needs a single Redis node"),
        }
    }

    pub fn stop(&mut self) {
        self.node().stop();
    }

    pub fn restart(&mut self) {
        self.node().restart();
    }
}

/// One signing key for the whole test run, written to a file like an operator would.
pub fn signing_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(keybroker::tokens::generate_pkcs8_pem)
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("keybroker-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// What the harness sends and gets back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn reason(&self) -> &str {
        self.body["error"]["reason"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, reason: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.reason(),
            reason,
            "unexpected reason; body: {}",
            self.text
        );
        assert_eq!(
            self.body["error"]["code"],
            json!(status),
            "code mirrors the status"
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message present"
        );
    }
}

pub struct Created {
    pub id: String,
    pub api_key: String,
    pub secret: String,
    pub secret_id: String,
    pub body: Value,
}

pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    pub redis: Option<SharedStore>,
    pub client: awc::Client,
    handle: ServerHandle,
}

pub fn base_settings() -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        workers: Some(1),
        ..Settings::default()
    };
    settings.admin.token = Some(Sensitive::new(ADMIN_TOKEN));
    settings.secrets.pepper = Some(Sensitive::new(PEPPER));
    settings.signing.key_pem = Some(Sensitive::new(signing_key_pem()));
    settings.signing.key_encryption_key = Some(Sensitive::new(KEY_ENCRYPTION_KEY));
    settings.log.level = "warn".into();
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A broker on a Redis the test owns (e.g. a persistent one it will restart).
pub async fn spawn_app_on_redis(redis: Arc<std::sync::Mutex<RedisServer>>) -> TestApp {
    spawn_app_on(SharedStore::Redis(redis), |_| {}).await
}

/// A broker on `store`, with settings of its own.
pub async fn spawn_app_on(store: SharedStore, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = base_settings();
    store.configure(&mut settings);
    customize(&mut settings);
    let backend = match store {
        SharedStore::Redis(_) => Backend::Redis,
        SharedStore::Cluster { .. } => Backend::Cluster,
    };
    launch(
        backend,
        settings,
        Some(store),
        Arc::new(ManualClock::starting_now()),
    )
    .await
}

pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = base_settings();
    let redis = SharedStore::new(backend);
    if let Some(store) = &redis {
        store.configure(&mut settings);
    }
    customize(&mut settings);
    launch(
        backend,
        settings,
        redis,
        Arc::new(ManualClock::starting_now()),
    )
    .await
}

async fn launch(
    backend: Backend,
    settings: Settings,
    redis: Option<SharedStore>,
    clock: Arc<ManualClock>,
) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), clock.clone())
        .await
        .expect("the application failed to build");
    let address = format!("http://127.0.0.1:{}", app.port());
    // Peers behind one load balancer share the public URL (and so the issuer).
    let mut settings = settings;
    settings
        .public_base_url
        .get_or_insert_with(|| address.clone());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        backend,
        clock,
        settings,
        redis,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish(),
        handle,
    }
}

impl TestApp {
    /// A second broker on the same store (Redis), keys, public URL and clock, as
    /// a replica behind the same load balancer would be.
    pub async fn spawn_peer(&self) -> TestApp {
        self.spawn_peer_with(|_| {}).await
    }

    /// [`TestApp::spawn_peer`] with settings of its own.
    pub async fn spawn_peer_with(&self, customize: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        customize(&mut settings);
        launch(
            self.backend,
            settings,
            self.redis.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub fn redis(&self) -> RawRedis<'_> {
        match self
            .redis
            .as_ref()
            .expect("this test runs on a Redis backend")
        {
            SharedStore::Redis(server) => {
                RawRedis::Node(server.lock().unwrap_or_else(|e| e.into_inner()))
            }
            SharedStore::Cluster { cluster, .. } => RawRedis::Cluster(cluster),
        }
    }

    /// The prefix of every key this test's brokers write.
    pub fn key_prefix(&self) -> &str {
        &self.settings.store.key_prefix
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(&self, request: awc::ClientRequest, body: Option<Body>) -> Reply {
        let result = match body {
            None => request.send().await,
            Some(Body::Json(v)) => request.send_json(&v).await,
            Some(Body::Raw(content_type, bytes)) => {
                let request = match content_type {
                    Some(ct) => request.insert_header(("content-type", ct)),
                    None => request,
                };
                request.send_body(bytes).await
            }
        };
        let mut response = result.expect("request failed");
        let bytes = response
            .body()
            .limit(4 * 1024 * 1024)
            .await
            .expect("response body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        self.send(request, body.map(Body::Json)).await
    }

    pub async fn create_instance(&self) -> Created {
        self.create_instance_with(json!({
            "name": "Acme search",
            "products": {
                "search": {"upstream": "http://127.0.0.1:9/search"},
                "chat": {"upstream": "http://127.0.0.1:9/chat"}
            }
        }))
        .await
    }

    pub async fn create_instance_with(&self, body: Value) -> Created {
        let reply = self.admin("POST", "/admin/v1/instances", Some(body)).await;
        assert_eq!(reply.status, 201, "create instance: {}", reply.text);
        let b = reply.body;
        Created {
            id: b["id"].as_str().unwrap().to_owned(),
            api_key: b["api_key"].as_str().unwrap().to_owned(),
            secret: b["secret"]["value"].as_str().unwrap().to_owned(),
            secret_id: b["secret"]["id"].as_str().unwrap().to_owned(),
            body: b,
        }
    }

    /// Adds a domain key; returns (id, value, body).
    pub async fn add_domain_key(
        &self,
        instance_id: &str,
        domains: &[&str],
    ) -> (String, String, Value) {
        let reply = self
            .admin(
                "POST",
                &format!("/admin/v1/instances/{instance_id}/domain-keys"),
                Some(json!({ "domains": domains })),
            )
            .await;
        assert_eq!(reply.status, 201, "create domain key: {}", reply.text);
        (
            reply.body["id"].as_str().unwrap().to_owned(),
            reply.body["value"].as_str().unwrap().to_owned(),
            reply.body,
        )
    }

    pub async fn auth(&self, api_key: &str, body: Value, origin: Option<&str>) -> Reply {
        let mut request = self
            .client
            .post(self.url("/v1/auth"))
            .insert_header(("x-inbenta-key", api_key));
        if let Some(origin) = origin {
            request = request.insert_header(("origin", origin));
        }
        self.send(request, Some(Body::Json(body))).await
    }

    pub async fn auth_with_secret(&self, api_key: &str, secret: &str) -> Reply {
        self.auth(api_key, json!({ "secret": secret }), None).await
    }

    pub async fn auth_with_domain_key(
        &self,
        api_key: &str,
        key: &str,
        origin: Option<&str>,
    ) -> Reply {
        self.auth(api_key, json!({ "domain_key": key }), origin)
            .await
    }

    /// A server token for a fresh instance: (instance, token).
    pub async fn server_token(&self) -> (Created, String) {
        let created = self.create_instance().await;
        let reply = self
            .auth_with_secret(&created.api_key, &created.secret)
            .await;
        assert_eq!(reply.status, 200, "auth: {}", reply.text);
        let token = reply.body["accessToken"].as_str().unwrap().to_owned();
        (created, token)
    }

    pub async fn refresh(&self, api_key: &str, token: &str, origin: Option<&str>) -> Reply {
        let mut request = self
            .client
            .post(self.url("/v1/refreshToken"))
            .insert_header(("x-inbenta-key", api_key))
            .bearer_auth(token);
        if let Some(origin) = origin {
            request = request.insert_header(("origin", origin));
        }
        self.send(request, None).await
    }

    pub async fn apis(&self, api_key: &str, token: &str) -> Reply {
        let request = self
            .client
            .get(self.url("/v1/apis"))
            .insert_header(("x-inbenta-key", api_key))
            .bearer_auth(token);
        self.send(request, None).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path)), None).await
    }
}

pub enum Body {
    Json(Value),
    Raw(Option<&'static str>, Vec<u8>),
}

/// Decodes a JWT's payload without verifying it (to read claims in assertions).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

/// Runs every listed test against the in-memory store, one Redis node and
/// the Redis Cluster; the tests listed after `shared:` (about what broker
/// processes share through their store) against the Redis node and the
/// cluster only.
#[macro_export]
macro_rules! every_backend {
    ($($name:ident),* $(,)? $(; shared: $($shared:ident),* $(,)?)?) => {
        mod memory {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            )*
            $($(
                #[actix_web::test]
                async fn $shared() {
                    super::$shared($crate::helpers::Backend::Redis).await
                }
            )*)?
        }
        mod cluster {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Cluster).await
                }
            )*
            $($(
                #[actix_web::test]
                async fn $shared() {
                    super::$shared($crate::helpers::Backend::Cluster).await
                }
            )*)?
        }
    };
}
