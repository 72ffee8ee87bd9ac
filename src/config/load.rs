//! Layering: defaults → TOML file → `KEYBROKER_*` environment variables, the
//! latter mapped onto TOML keys by one table so that both spell the same
//! setting the same way.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, Settings};

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Text,
    Number,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// Comma-separated.
    List,
}

/// Every environment variable and the TOML key it overrides.
pub(super) const ENV: &[(&str, &str, Kind)] = &[
    ("KEYBROKER_LISTEN", "listen", Kind::Text),
    ("KEYBROKER_PUBLIC_BASE_URL", "public_base_url", Kind::Text),
    ("KEYBROKER_WORKERS", "workers", Kind::Number),
    ("KEYBROKER_ADMIN_TOKEN", "admin.token", Kind::Text),
    ("KEYBROKER_REDIS_URL", "store.redis_url", Kind::Text),
    (
        "KEYBROKER_REDIS_CLUSTER_NODES",
        "store.redis_cluster_nodes",
        Kind::Text,
    ),
    ("KEYBROKER_REDIS_KEY_PREFIX", "store.key_prefix", Kind::Text),
    (
        "KEYBROKER_REDIS_TIMEOUT_MS",
        "store.timeout_ms",
        Kind::Number,
    ),
    ("KEYBROKER_SIGNING_KEY_FILE", "signing.key_file", Kind::Text),
    ("KEYBROKER_SIGNING_KEY", "signing.key_pem", Kind::Text),
    (
        "KEYBROKER_KEY_ENCRYPTION_KEY",
        "signing.key_encryption_key",
        Kind::Text,
    ),
    (
        "KEYBROKER_PUBLISH_LEAD_SECONDS",
        "signing.publish_lead_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_JWKS_MAX_AGE_SECONDS",
        "signing.jwks_max_age_seconds",
        Kind::Number,
    ),
    ("KEYBROKER_PEPPER", "secrets.pepper", Kind::Text),
    (
        "KEYBROKER_DOMAIN_KEY_PROPAGATION_SECONDS",
        "domain_keys.propagation_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_TOKEN_TTL_SECONDS",
        "tokens.ttl_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_LEEWAY_SECONDS",
        "tokens.leeway_seconds",
        Kind::Number,
    ),
    ("KEYBROKER_ISSUER", "tokens.issuer", Kind::Text),
    (
        "KEYBROKER_MAX_SESSION_SECONDS",
        "tokens.max_session_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_MAX_BODY_BYTES",
        "http.max_body_bytes",
        Kind::Number,
    ),
    (
        "KEYBROKER_REFRESH_REUSE_SECONDS",
        "tokens.refresh_reuse_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_UPSTREAM_TIMEOUT_MS",
        "gateway.upstream_timeout_ms",
        Kind::Number,
    ),
    (
        "KEYBROKER_VERIFY_URI_HEADER",
        "verify.uri_header",
        Kind::Text,
    ),
    (
        "KEYBROKER_UPSTREAMS_ALLOW_PRIVATE",
        "upstreams.allow_private",
        Kind::Bool,
    ),
    (
        "KEYBROKER_TRUSTED_PROXIES",
        "http.trusted_proxies",
        Kind::List,
    ),
    (
        "KEYBROKER_CORS_MAX_AGE_SECONDS",
        "http.cors_max_age_seconds",
        Kind::Number,
    ),
    (
        "KEYBROKER_HTTP_HEADER_TIMEOUT_MS",
        "http.header_timeout_ms",
        Kind::Number,
    ),
    (
        "KEYBROKER_HTTP_BODY_TIMEOUT_MS",
        "http.body_timeout_ms",
        Kind::Number,
    ),
    (
        "KEYBROKER_AUTH_FAILURES_PER_IP",
        "limits.auth_failures_per_ip_per_minute",
        Kind::Number,
    ),
    (
        "KEYBROKER_AUTH_FAILURES_PER_KEY",
        "limits.auth_failures_per_key_per_minute",
        Kind::Number,
    ),
    ("KEYBROKER_CONSOLE", "console.enabled", Kind::Bool),
    ("KEYBROKER_LOG_FORMAT", "log.format", Kind::Text),
    ("KEYBROKER_LOG_LEVEL", "log.level", Kind::Text),
];

impl Settings {
    /// Defaults, then the TOML file if one is given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, |var| std::env::var(var).ok())
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_owned(),
                        source,
                    })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.display().to_string(),
                        message: e.message().to_owned(),
                    })?
            }
            None => toml::Table::new(),
        };
        for &(var, key, kind) in ENV {
            let Some(raw) = env(var) else { continue };
            let value = match kind {
                Kind::Text => toml::Value::String(raw),
                Kind::Number => toml::Value::Integer(raw.trim().parse().map_err(|_| {
                    ConfigError::EnvNumber {
                        var,
                        value: raw.clone(),
                    }
                })?),
                Kind::Bool => {
                    toml::Value::Boolean(parse_bool(&raw).ok_or_else(|| ConfigError::EnvBool {
                        var,
                        value: raw.clone(),
                    })?)
                }
                Kind::List => toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                ),
            };
            set_path(&mut table, key, value);
        }
        let source = file.map_or("environment".to_owned(), |p| p.display().to_string());
        Settings::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
            path: source,
            message: e.message().to_owned(),
        })
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts = dotted.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
}
