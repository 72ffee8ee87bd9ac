//! Black-box harness: each test gets its own broker bound to port 0 and, for the
//! Redis backend, its own `redis-server` on a free port, stopped when the test
//! ends. Nothing is mocked.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use keybroker::clock::ManualClock;
use keybroker::config::{Sensitive, Settings};
use keybroker::startup::Application;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef-not-a-secret";
pub const PEPPER: &str = "test-pepper-0123456789abcdef-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
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

/// A real `redis-server`, private to one test.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// With AOF on, a restarted server comes back with its data.
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server with AOF (`appendfsync always`), for stop/restart tests.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let dir = temp_dir("redis");
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.clone(),
                persistent,
            };
            if server.launch() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port (is redis-server installed? run ./.ci/test.sh)");
    }

    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed; run ./.ci/test.sh, which installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if redis_ping(self.port) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port; its data survives only if persistent.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not come back on port {}",
            self.port
        );
    }

    /// Deletes the one key matching `pattern` (a test standing in for a write
    /// that never happened); panics unless exactly one matches.
    pub fn delete_the_key_matching(&self, pattern: &str) {
        let keys = self.command(&["KEYS", pattern]);
        let found: Vec<&str> = keys
            .lines()
            .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
            .collect();
        assert_eq!(found.len(), 1, "keys matching {pattern}: {keys}");
        assert!(
            self.command(&["DEL", found[0]]).starts_with(":1"),
            "could not delete {}",
            found[0]
        );
    }

    /// Runs a command with a raw RESP client and returns the reply as text.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis connect");
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
        }
        stream.write_all(request.as_bytes()).expect("redis write");
        let mut reply = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    if resp_complete(&reply) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }
}

fn resp_complete(data: &[u8]) -> bool {
    fn parse(data: &[u8], pos: usize) -> Option<usize> {
        let line_end = data[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let line = std::str::from_utf8(&data[pos + 1..line_end]).ok()?;
        match data[pos] {
            b'+' | b'-' | b':' => Some(line_end + 2),
            b'$' => {
                let n: i64 = line.parse().ok()?;
                if n < 0 {
                    return Some(line_end + 2);
                }
                let end = line_end + 2 + n as usize + 2;
                (data.len() >= end).then_some(end)
            }
            b'*' => {
                let n: i64 = line.parse().ok()?;
                let mut at = line_end + 2;
                for _ in 0..n.max(0) {
                    at = parse(data, at)?;
                }
                Some(at)
            }
            _ => None,
        }
    }
    parse(data, 0).is_some()
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    pub redis: Option<Arc<std::sync::Mutex<RedisServer>>>,
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
    settings.log.level = "warn".into();
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A broker on a Redis the test owns (e.g. a persistent one it will restart).
pub async fn spawn_app_on_redis(redis: Arc<std::sync::Mutex<RedisServer>>, url: String) -> TestApp {
    let mut settings = base_settings();
    settings.store.redis_url = Some(Sensitive::new(url));
    launch(
        Backend::Redis,
        settings,
        Some(redis),
        Arc::new(ManualClock::starting_now()),
    )
    .await
}

pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = base_settings();
    let redis = match backend {
        Backend::Memory => None,
        Backend::Redis => {
            let server = RedisServer::start();
            settings.store.redis_url = Some(Sensitive::new(server.url()));
            Some(Arc::new(std::sync::Mutex::new(server)))
        }
    };
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
    redis: Option<Arc<std::sync::Mutex<RedisServer>>>,
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
        let settings = self.settings.clone();
        launch(
            self.backend,
            settings,
            self.redis.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub fn redis(&self) -> std::sync::MutexGuard<'_, RedisServer> {
        self.redis
            .as_ref()
            .expect("this test runs on the Redis backend")
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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

/// Runs every listed test against the in-memory and the Redis backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
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
        }
    };
}

/// What a [`TestUpstream`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A real HTTP upstream for the gateway, recording every request it gets.
/// Paths containing `/slow` answer after two seconds.
pub struct TestUpstream {
    pub base: String,
    pub received: Arc<std::sync::Mutex<Vec<Recorded>>>,
    handle: ServerHandle,
}

impl TestUpstream {
    pub fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let received: Arc<std::sync::Mutex<Vec<Recorded>>> = Arc::default();
        let log = received.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let log = log.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let log = log.clone();
                async move {
                    let recorded = Recorded {
                        method: req.method().to_string(),
                        path: req.path().to_owned(),
                        query: req.query_string().to_owned(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    log.lock().unwrap().push(recorded);
                    if req.path().contains("/slow") {
                        actix_web::rt::time::sleep(Duration::from_secs(2)).await;
                    }
                    HttpResponse::Ok()
                        .insert_header(("x-upstream", "test"))
                        .json(json!({"upstream": true, "path": req.path(), "bytes": body.len()}))
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .expect("listen upstream")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestUpstream {
            base,
            received,
            handle,
        }
    }

    pub fn hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn last(&self) -> Recorded {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream received nothing")
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
