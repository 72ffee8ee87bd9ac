//! `keybroker serve --demo`: everything needed to try the full flow with
//! nothing else running. Missing secrets are generated for this process only,
//! and a demo instance is seeded with a secret and an already-active domain key.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::config::{Sensitive, Settings};
use crate::domain::instance::Product;
use crate::error::ApiError;
use crate::http::admin::{domain_keys, instances};
use crate::http::AppState;
use crate::tokens::generate_pkcs8_pem;

/// The Origin the demo domain key is valid from (a typical local front end).
pub const DEMO_ORIGIN: &str = "http://localhost:3000";

fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What `prepare` had to generate, to tell the user.
#[derive(Debug, Default)]
pub struct Generated {
    pub admin_token: bool,
    pub pepper: bool,
    pub signing_key: bool,
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
    generated
}

pub struct DemoInstance {
    pub instance_id: String,
    pub api_key: String,
    pub secret: String,
    pub domain_key: String,
}

pub async fn seed(state: &AppState) -> Result<DemoInstance, ApiError> {
    let base = &state.public_base_url;
    let products: BTreeMap<String, Product> = ["search", "chat"]
        .into_iter()
        .map(|slug| {
            (
                slug.to_owned(),
                Product {
                    upstream: format!("{base}/demo/echo/{slug}"),
                },
            )
        })
        .collect();
    let (instance, secret, _) = instances::provision_instance(
        state,
        "Demo".into(),
        products,
        state.default_token_ttl_seconds,
    )
    .await?;
    let domains = vec![
        "localhost".to_owned(),
        "localhost:3000".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let (domain_key, _) =
        domain_keys::issue_domain_key(state, &instance.id, domains, Duration::zero()).await?;
    Ok(DemoInstance {
        instance_id: instance.id,
        api_key: instance.api_key,
        secret: secret.expose().to_owned(),
        domain_key: domain_key.expose().to_owned(),
    })
}

/// The banner printed on stdout: credentials and ready-to-paste commands.
pub fn banner(demo: &DemoInstance, base: &str, admin_token: &str, generated: &Generated) -> String {
    let mut notes = Vec::new();
    if generated.signing_key {
        notes.push("a fresh Ed25519 signing key (tokens die with this process)");
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
    format!(
        r#"
keybroker demo — in-memory store, nothing is persisted.
{generated_line}
  instance     {instance}
  API key      {api_key}
  secret       {secret}
  domain key   {domain_key}   (valid from {DEMO_ORIGIN}, active now)
  admin token  {admin_token}

Server to server — exchange the secret for an access token:
  curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -H 'Content-Type: application/json' -d '{{"secret":"{secret}"}}'

Browser — the domain key with a matching Origin:
  curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -H 'Origin: {DEMO_ORIGIN}' -H 'Content-Type: application/json' -d '{{"domain_key":"{domain_key}"}}'

Refresh, list the products (put the accessToken in TOKEN first):
  TOKEN=$(curl -s -X POST {base}/v1/auth -H 'x-inbenta-key: {api_key}' -d 'secret={secret}' | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
  curl -s -X POST {base}/v1/refreshToken -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/apis -H 'x-inbenta-key: {api_key}' -H "Authorization: Bearer $TOKEN"

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
