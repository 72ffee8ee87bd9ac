//! `keybroker serve --demo`: everything needed to try the full flow with
//! nothing else running. Missing secrets are generated for this process only,
//! and a demo instance is seeded with a secret and an already-active domain key.

use std::collections::BTreeMap;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Duration;
use serde_json::json;

use crate::app::AppState;
use crate::config::{Sensitive, Settings};
use crate::domain::instance::Product;
use crate::error::ApiError;
use crate::tokens::generate_pkcs8_pem;

/// The Origin the demo domain key is valid from (a typical local front end).
pub const DEMO_ORIGIN: &str = "http://localhost:3000";

/// Where the demo page listens: the address behind [`DEMO_ORIGIN`].
const DEMO_PAGE_LISTEN: &str = "127.0.0.1:3000";

/// The demo page: the SDK, loaded from the broker, on the demo key's origin.
const DEMO_PAGE: &str = include_str!("demo.html");

fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn rand_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's CSPRNG is unavailable");
    bytes
}

/// What `prepare` had to generate, to tell the user.
#[derive(Debug, Default)]
pub struct Generated {
    pub admin_token: bool,
    pub pepper: bool,
    pub signing_key: bool,
    pub key_encryption_key: bool,
}

/// Fills in the admin token, pepper and signing key when they are not configured.
pub fn prepare(settings: &mut Settings) -> Generated {
    let mut generated = Generated::default();
    if settings.admin.token.is_none() {
        settings.admin.token = Some(Sensitive::new(format!("demo-admin-{}", random_hex())));
        generated.admin_token = true;
    }
    if settings.secrets.pepper.is_none() {
        settings.secrets.pepper = Some(Sensitive::new(random_hex()));
        generated.pepper = true;
    }
    if settings.signing.key_pem.is_none() && settings.signing.key_file.is_none() {
        settings.signing.key_pem = Some(Sensitive::new(generate_pkcs8_pem()));
        generated.signing_key = true;
    }
    if settings.signing.key_encryption_key.is_none() {
        use base64::Engine;
        let bytes: [u8; 32] = rand_bytes();
        settings.signing.key_encryption_key = Some(Sensitive::new(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ));
        generated.key_encryption_key = true;
    }
    generated
}

pub struct DemoInstance {
    pub instance_id: String,
    pub api_key: String,
    pub secret: String,
    pub domain_key: String,
}

/// The built-in echo upstream: answers every request with what reached it, so
/// the quickstart shows what the gateway forwards (and what it strips).
async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let keybroker_headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-keybroker-"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "echo": true,
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "keybroker_headers": keybroker_headers,
        "authorization_received": header("authorization").is_some(),
        "api_key_received": header("x-inbenta-key").is_some(),
        "body_bytes": body.len(),
    }))
}

/// Starts the echo upstream on a free loopback port; returns its base URL.
pub fn start_echo() -> std::io::Result<(String, Server)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .listen(listener)?
        .run();
    Ok((base, server))
}

/// Serves the demo page on [`DEMO_ORIGIN`]: a token's countdown, the SDK's
/// events and a search through the gateway, with the demo's API key and
/// domain key filled in (a domain key is meant to sit in a page).
pub fn start_page(demo: &DemoInstance, broker_base: &str) -> std::io::Result<Server> {
    let config = json!({
        "baseUrl": broker_base,
        "apiKey": demo.api_key,
        "domainKey": demo.domain_key,
    })
    .to_string()
    // Inside a <script> element, `</` could end it early.
    .replace("</", "<\\/");
    let page = DEMO_PAGE.replace("__CONFIG__", &config);
    let listener = TcpListener::bind(DEMO_PAGE_LISTEN)?;
    let server = HttpServer::new(move || {
        let page = page.clone();
        App::new().default_service(web::to(move || {
            let page = page.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header(("cache-control", "no-store"))
                    .body(page)
            }
        }))
    })
    .workers(1)
    .listen(listener)?
    .run();
    Ok(server)
}

pub async fn seed(state: &AppState, echo_base: &str) -> Result<DemoInstance, ApiError> {
    let products: BTreeMap<String, Product> = ["search", "chat"]
        .into_iter()
        .map(|slug| (slug.to_owned(), Product::new(format!("{echo_base}/{slug}"))))
        .collect();
    let (instance, secret, _) = state
        .provision_instance(
            "Demo".into(),
            products,
            state.sessions.default_token_ttl_seconds,
        )
        .await?;
    let domains = vec![
        "localhost".to_owned(),
        "localhost:3000".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let (domain_key, _) = state
        .issue_domain_key(&instance.id, domains, Duration::zero())
        .await?;
    Ok(DemoInstance {
        instance_id: instance.id,
        api_key: instance.api_key,
        secret: secret.expose().to_owned(),
        domain_key: domain_key.expose().to_owned(),
    })
}

/// The banner printed on stdout: credentials and ready-to-paste commands.
pub fn banner(
    demo: &DemoInstance,
    base: &str,
    store: &str,
    admin_token: &str,
    generated: &Generated,
    page: &Result<(), String>,
) -> String {
    let mut notes = Vec::new();
    if generated.signing_key {
        notes.push("a fresh Ed25519 signing key (tokens die with this process)");
    }
    if generated.key_encryption_key {
        notes.push("a fresh key-encryption key for the signing-key ring (a ring kept in Redis will not open on the next start without KEYBROKER_KEY_ENCRYPTION_KEY)");
    }
    if generated.pepper {
        notes.push("a random pepper");
    }
    if generated.admin_token {
        notes.push("a random admin token");
    }
    let generated_line = if notes.is_empty() {
        String::new()
    } else {
        format!("Generated for this run only: {}.\n", notes.join(", "))
    };
    let page_line = match page {
        Ok(()) => format!("Open {DEMO_ORIGIN} in a browser: the SDK refreshes a token and searches through the gateway.\n"),
        Err(e) => format!("The demo page is off ({DEMO_PAGE_LISTEN}: {e}).\n"),
    };
    format!(
        r#"
keybroker demo — {store}.
{generated_line}{page_line}
  instance     {instance}
  API key      {api_key}
  secret       {secret}
  domain key   {domain_key}   (valid from {DEMO_ORIGIN}, active now)
  admin token  {admin_token}
  console      {base}/console   (sign in with the admin token above)

Server to server — exchange the secret for an access token:
  curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -H 'Content-Type: application/json' -d '{{"secret":"{secret}"}}'

Browser — the domain key with a matching Origin:
  curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -H 'Origin: {DEMO_ORIGIN}' -H 'Content-Type: application/json' -d '{{"domain_key":"{domain_key}"}}'

Refresh, list the products (put the accessToken in TOKEN first):
  TOKEN=$(curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -d 'secret={secret}' | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
  curl -s -X POST {base}/v1/refreshToken -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/apis -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"

Call a product through the gateway (proxied to the built-in echo upstream):
  curl -s "{base}/prod/search/v1/search?q=hello" -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"

Log out (revokes the token and its session):
  curl -s -X POST {base}/v1/revoke -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"

Admin:
  curl -s {base}/admin/v1/instances -H 'Authorization: Bearer {admin_token}'

Public keys: {base}/.well-known/jwks.json
"#,
        instance = demo.instance_id,
        api_key = demo.api_key,
        secret = demo.secret,
        domain_key = demo.domain_key,
    )
}
