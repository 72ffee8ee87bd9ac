//! Slow clients: a request head or body trickled in a byte at a time is cut
//! off after `http.header_timeout_ms` / `http.body_timeout_ms` with 408, and
//! nothing of what it asked for happens; the broker keeps answering others.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::every_backend;
use crate::helpers::{spawn_app_with, Backend, TestApp, ADMIN_TOKEN};

const BOUND_MS: u64 = 600;

/// A raw connection to the app (a client no HTTP library would emulate).
async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.address.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect to the app")
}

/// Sends `head`, then trickles `trickle` one byte every 100 ms while reading
/// whatever the broker answers, until it closes the connection or `wait`
/// passes. Returns what was read and when the answer was complete.
async fn trickle(app: &TestApp, head: &str, trickle: &[u8], wait: Duration) -> (String, Duration) {
    let stream = connect(app).await;
    let (mut read, mut write) = stream.into_split();
    write.write_all(head.as_bytes()).await.expect("send head");
    let started = Instant::now();
    let bytes = trickle.to_vec();
    let writer = actix_web::rt::spawn(async move {
        for b in bytes {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(&[b]).await.is_err() {
                break;
            }
        }
        // Keep the connection open: only the broker may end it.
        actix_web::rt::time::sleep(Duration::from_secs(30)).await;
        drop(write);
    });
    let mut answer = Vec::new();
    let _ = actix_web::rt::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    writer.abort();
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer within the bound: {answer:?}"))
}

fn body_of(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {answer:?}"))
}

/// Checks a trickled body's request: 408 `request_timeout` near the bound,
/// the connection closed, and the broker answering others meanwhile.
async fn assert_cut_off(app: &TestApp, head: &str) {
    let other = async {
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        app.admin("GET", "/admin/v1/instances", None).await
    };
    let ((answer, elapsed), other) = tokio::join!(
        trickle(
            app,
            head,
            br#"{"name": "slowly, slowly"#,
            Duration::from_secs(4)
        ),
        other
    );
    assert_eq!(
        other.status, 200,
        "others are served meanwhile: {}",
        other.text
    );
    assert_eq!(status_of(&answer), 408, "{answer}");
    let body = body_of(&answer);
    assert_eq!(body["error"]["reason"], "request_timeout", "{answer}");
    assert_eq!(body["error"]["code"], 408, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        elapsed >= Duration::from_millis(BOUND_MS - 100)
            && elapsed < Duration::from_millis(BOUND_MS + 1500),
        "answered after {elapsed:?}, the bound is {BOUND_MS} ms"
    );
}

async fn a_trickled_admin_body_is_cut_off_and_creates_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.http.body_timeout_ms = BOUND_MS).await;
    let head = format!(
        "POST /admin/v1/instances HTTP/1.1\r\nHost: broker\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n"
    );
    assert_cut_off(&app, &head).await;

    let list = app.admin("GET", "/admin/v1/instances", None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(
        list.body["instances"],
        serde_json::json!([]),
        "{}",
        list.text
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

async fn a_trickled_auth_body_is_cut_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.http.body_timeout_ms = BOUND_MS).await;
    let created = app.create_instance().await;
    let head = format!(
        "POST /v1/auth HTTP/1.1\r\nHost: broker\r\nx-inbenta-key: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        created.api_key
    );
    assert_cut_off(&app, &head).await;
    let reply = app
        .auth_with_secret(&created.api_key, &created.secret)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn a_trickled_request_head_is_cut_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.http.header_timeout_ms = BOUND_MS).await;
    let (answer, elapsed) = trickle(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: broker\r\n",
        b"X-Slow: one byte at a time, for ever and ever",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(
        elapsed < Duration::from_millis(BOUND_MS + 1500),
        "answered after {elapsed:?}, the bound is {BOUND_MS} ms"
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

every_backend!(
    a_trickled_admin_body_is_cut_off_and_creates_nothing,
    a_trickled_auth_body_is_cut_off,
    a_trickled_request_head_is_cut_off,
);
