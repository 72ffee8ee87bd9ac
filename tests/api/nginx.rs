//! Forward auth through a real nginx: `examples/nginx/keybroker.conf`, with its
//! placeholder addresses replaced, in front of a broker (Redis backend) and a
//! recording upstream. nginx's `auth_request` asks the broker's `/v1/verify`
//! about every request; the upstream's log shows what got through.
//!
//! nginx must be installed (`./.ci/test.sh` installs it); a missing nginx fails
//! the test rather than skipping it, so CI cannot pass without running it.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{self, claims_of, Backend, Body, Reply, TestApp};
use crate::upstream::{Recorded, TestUpstream};

/// The example as shipped: the test proves the file users copy, not a variant.
const EXAMPLE: &str = include_str!("../../examples/nginx/keybroker.conf");

fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed (looked in PATH and /usr/sbin/nginx); \
                 run ./.ci/test.sh, which installs the Debian package"
            )
        })
}

/// Replaces a placeholder that must occur exactly once, so that an edit of
/// the example cannot silently leave the test pointing somewhere else.
fn substitute(text: &str, placeholder: &str, value: &str) -> String {
    assert_eq!(
        text.matches(placeholder).count(),
        1,
        "examples/nginx/keybroker.conf must contain `{placeholder}` exactly once"
    );
    text.replace(placeholder, value)
}

/// A private nginx (one process, no daemon, everything under a temporary
/// directory), killed when dropped.
struct Nginx {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Nginx {
    /// Serves the example with the broker at `broker` and every product at
    /// `upstream` (both `host:port`).
    async fn start(broker: &str, upstream: &str) -> Nginx {
        let binary = nginx_binary();
        let version = Command::new(&binary)
            .arg("-V")
            .output()
            .expect("cannot run nginx -V");
        let build = String::from_utf8_lossy(&version.stderr).into_owned();
        assert!(
            build.contains("--with-http_auth_request_module"),
            "this nginx lacks the auth_request module:\n{build}"
        );
        let dir = helpers::temp_dir("nginx");
        // Every temp path nginx creates at start-up must be writable here, or
        // it tries the packaged ones under /var/lib/nginx.
        let mut temp_paths = format!(
            "client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n",
            d = dir.display()
        );
        for module in ["fastcgi", "uwsgi", "scgi"] {
            if !build.contains(&format!("--without-http_{module}_module")) {
                temp_paths.push_str(&format!(
                    "    {module}_temp_path {}/{module};\n",
                    dir.display()
                ));
            }
        }

        for _ in 0..5 {
            let port = helpers::free_port();
            let site = substitute(
                EXAMPLE,
                "server 127.0.0.1:8080;",
                &format!("server {broker};"),
            );
            let site = substitute(
                &site,
                "server 127.0.0.1:9001;",
                &format!("server {upstream};"),
            );
            let site = substitute(
                &site,
                "server 127.0.0.1:9002;",
                &format!("server {upstream};"),
            );
            let site = substitute(&site, "listen 8000;", &format!("listen 127.0.0.1:{port};"));
            std::fs::write(dir.join("keybroker.conf"), site).expect("write keybroker.conf");
            let main = format!(
                "daemon off;\n\
                 master_process off;\n\
                 worker_processes 1;\n\
                 pid {d}/nginx.pid;\n\
                 error_log {d}/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n    access_log {d}/access.log;\n    {temp_paths}    include {d}/keybroker.conf;\n}}\n",
                d = dir.display()
            );
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, main).expect("write nginx.conf");
            let output = File::create(dir.join("output.log")).expect("nginx output file");
            let mut child = Command::new(&binary)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::from(output.try_clone().expect("dup output")))
                .stderr(Stdio::from(output))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            if listening(&mut child, port).await {
                return Nginx {
                    child,
                    base: format!("http://127.0.0.1:{port}"),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = read_log(&dir);
            // Another process may have taken the port in between: try another.
            if !log.contains("Address already in use") {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("nginx did not start:\n{log}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("nginx found no free port in five tries");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// nginx's own output and error log, for failure messages.
    fn log(&self) -> String {
        read_log(&self.dir)
    }
}

fn read_log(dir: &Path) -> String {
    ["output.log", "error.log"]
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until nginx accepts connections on `port`; `false` if it exited or
/// took longer than ten seconds.
async fn listening(child: &mut Child, port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return true;
        }
        // Never block this thread: the broker's Redis connection is driven by
        // this test's runtime.
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A product request through nginx, as a server would send it.
async fn call(
    app: &TestApp,
    nginx: &Nginx,
    method: &str,
    path: &str,
    api_key: &str,
    token: Option<&str>,
) -> Reply {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = app
        .client
        .request(method.clone(), nginx.url(path))
        .insert_header(("x-inbenta-key", api_key))
        // A caller cannot pass itself off as someone else.
        .insert_header(("x-keybroker-instance", "ins_forged"))
        .insert_header(("x-keybroker-token-id", "forged"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body = (method == awc::http::Method::POST)
        .then(|| Body::Raw(Some("application/json"), br#"{"query":"hello"}"#.to_vec()));
    app.send(request, body).await
}

/// Every value of one header the upstream received.
fn values<'a>(recorded: &'a Recorded, name: &str) -> Vec<&'a str> {
    recorded
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn nginx_auth_request_allows_rejects_and_honours_revocation(backend: Backend) {
    let app = helpers::spawn_app(backend).await;
    let upstream = TestUpstream::start();
    // The instance has `search` only; nginx serves `search` and `chat`.
    let created = app
        .create_instance_with(json!({
            "name": "Behind nginx",
            "products": {"search": {"upstream": upstream.base.clone()}}
        }))
        .await;
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.status, 200, "auth: {}", reply.text);
    let token = reply.body["accessToken"].as_str().unwrap().to_owned();
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();

    let broker = app.address.trim_start_matches("http://");
    let upstream_address = upstream.base.trim_start_matches("http://");
    let nginx = Nginx::start(broker, upstream_address).await;
    let key = created.api_key.as_str();

    // (1) Allowed: the product gets the request with the broker's identity
    // headers, and without the caller's credentials or forged identity.
    for method in ["GET", "POST"] {
        let reply = call(
            &app,
            &nginx,
            method,
            "/search/v1/search?q=hello",
            key,
            Some(&token),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{method} through nginx: {}\n{}",
            reply.text,
            nginx.log()
        );
        assert_eq!(reply.body["upstream"], json!(true), "the upstream answered");
        let seen = upstream.last();
        assert_eq!(seen.method, method);
        assert_eq!(seen.path, "/search/v1/search");
        assert_eq!(seen.query, "q=hello");
        if method == "POST" {
            assert_eq!(
                seen.body, br#"{"query":"hello"}"#,
                "the body reached the product"
            );
        }
        assert_eq!(values(&seen, "x-keybroker-instance"), [created.id.as_str()]);
        assert_eq!(values(&seen, "x-keybroker-subject-kind"), ["server"]);
        assert_eq!(values(&seen, "x-keybroker-token-id"), [jti.as_str()]);
        assert!(
            seen.header("authorization").is_none(),
            "the token reached the product"
        );
        assert!(
            seen.header("x-inbenta-key").is_none(),
            "the API key reached the product"
        );
    }
    assert_eq!(upstream.hits(), 2);

    // (2) Rejected: no token is a 401 from the broker, passed on by nginx with
    // the broker's challenge; the product is never contacted.
    let reply = call(&app, &nginx, "GET", "/search/v1/search", key, None).await;
    assert_eq!(reply.status, 401, "{}\n{}", reply.text, nginx.log());
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let reply = call(
        &app,
        &nginx,
        "GET",
        "/search/v1/search",
        key,
        Some("not-a-token"),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(upstream.hits(), 2, "a rejected request reached the product");

    // A product the instance does not have: the broker's 404 is not a verdict
    // nginx knows, so it answers 500 — still closed.
    let reply = call(&app, &nginx, "GET", "/chat/v1/chat", key, Some(&token)).await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert_eq!(upstream.hits(), 2);

    // Path confusion: nginx routes the normalised path (/chat/v1/chat) while
    // the raw URI names `search`, which the instance has. The example's guard
    // refuses it (403 from the guard; without it this would be a 200 into chat).
    let reply = call(
        &app,
        &nginx,
        "GET",
        "/search/../chat/v1/chat",
        key,
        Some(&token),
    )
    .await;
    assert_eq!(reply.status, 403, "{}\n{}", reply.text, nginx.log());
    assert_eq!(upstream.hits(), 2, "a path climbed out of its product");
    // The broker refuses dot segments outright (400 invalid_path), even ones
    // that would stay inside the product; nginx turns any auth_request status
    // other than 2xx/401/403 into a 500. Either way the product is not reached.
    let reply = call(
        &app,
        &nginx,
        "GET",
        "/search/x/../v1/search",
        key,
        Some(&token),
    )
    .await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert_eq!(upstream.hits(), 2, "a dot-segment path reached the product");

    // (3) Revoked: after the admin revokes the token's jti, the same request
    // is refused at once, and the product is not contacted.
    let reply = app
        .admin(
            "POST",
            &format!("/admin/v1/instances/{}/revoke-tokens", created.id),
            Some(json!({ "jti": jti })),
        )
        .await;
    assert_eq!(reply.status, 200, "revoke: {}", reply.text);
    assert_eq!(reply.body["revoked"], json!("token"));
    let reply = call(&app, &nginx, "GET", "/search/v1/search", key, Some(&token)).await;
    assert_eq!(reply.status, 401, "{}\n{}", reply.text, nginx.log());
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(upstream.hits(), 2, "a revoked token reached the product");

    // Only that token: a new one from the same secret still gets through.
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    let fresh = reply.body["accessToken"].as_str().unwrap().to_owned();
    let reply = call(&app, &nginx, "GET", "/search/v1/search", key, Some(&fresh)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(upstream.hits(), 3);
    assert_eq!(
        values(&upstream.last(), "x-keybroker-token-id"),
        [claims_of(&fresh)["jti"].as_str().unwrap()]
    );

    drop(nginx);
    upstream.stop().await;
    app.stop().await;
}

crate::every_backend!(;
    shared:
    nginx_auth_request_allows_rejects_and_honours_revocation,
);
