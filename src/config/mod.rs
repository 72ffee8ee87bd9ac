//! Settings, layered: documented defaults → TOML file → `KEYBROKER_*` environment
//! variables. The process refuses to start when something required is missing or
//! weak, and says which setting and why (fail fast, never a half-secure broker).
//!
//! The names in SPEC §9 are stable; `config/default.toml` documents every key.
//! `load.rs` layers the sources, `validate.rs` holds the start-up checks.

mod load;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const MIN_ADMIN_TOKEN_LEN: usize = 32;
pub const MIN_PEPPER_LEN: usize = 32;

/// How to make a key-encryption key, for the start-up errors that need one.
pub const KEK_HOWTO: &str = "make one with `openssl rand -base64 32`";

/// A configured secret. Its `Debug` never shows the value.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(…)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub public_base_url: Option<String>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    pub admin: AdminSettings,
    pub store: StoreSettings,
    pub signing: SigningSettings,
    pub secrets: SecretsSettings,
    pub domain_keys: DomainKeySettings,
    pub tokens: TokenSettings,
    pub http: HttpSettings,
    pub gateway: GatewaySettings,
    pub verify: VerifySettings,
    pub upstreams: UpstreamSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub console: ConsoleSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    pub token: Option<Sensitive>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub redis_url: Option<Sensitive>,
    /// Comma-separated `redis://host:port` seed nodes of a Redis Cluster
    /// (SPEC §13); selects the cluster backend and excludes `redis_url`.
    pub redis_cluster_nodes: Option<Sensitive>,
    pub key_prefix: String,
    /// Connect and command timeout for Redis, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// Seeds an empty key ring (SPEC §12).
    pub key_file: Option<PathBuf>,
    /// The PEM itself, for platforms that pass secrets as variables.
    pub key_pem: Option<Sensitive>,
    /// Keys being rotated out: they no longer sign but still verify.
    pub previous_key_files: Vec<PathBuf>,
    /// Base64 of 32 random bytes: the AES-256-GCM key that seals the ring's
    /// private keys in the store. Required with Redis.
    pub key_encryption_key: Option<Sensitive>,
    /// How long a new key is published before it signs.
    pub publish_lead_seconds: u64,
    /// The JWKS `Cache-Control: max-age`; shorter than the publish lead.
    pub jwks_max_age_seconds: u64,
}

impl Default for SigningSettings {
    fn default() -> Self {
        SigningSettings {
            key_file: None,
            key_pem: None,
            previous_key_files: Vec::new(),
            key_encryption_key: None,
            publish_lead_seconds: 600,
            jwks_max_age_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    pub pepper: Option<Sensitive>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainKeySettings {
    pub propagation_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub ttl_seconds: u64,
    pub leeway_seconds: u64,
    /// `iss` of every token; defaults to the public base URL.
    pub issuer: Option<String>,
    /// A refresh family may not outlive this, counted from the first `/v1/auth`.
    pub max_session_seconds: u64,
    /// Presenting the same token to `/v1/refreshToken` within this window
    /// returns the same successor (two tabs refreshing at once both keep working).
    pub refresh_reuse_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    /// Peers (IPs or CIDR blocks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// How long browsers may cache a CORS preflight answer.
    pub cors_max_age_seconds: u64,
    /// A client must send a request's head within this many milliseconds of
    /// opening the connection.
    pub header_timeout_ms: u64,
    /// A request body read by the broker must arrive whole within this many
    /// milliseconds.
    pub body_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Failed `/v1/auth` exchanges allowed per client IP per minute.
    pub auth_failures_per_ip_per_minute: u64,
    /// Failed `/v1/auth` exchanges allowed per API key per minute.
    pub auth_failures_per_key_per_minute: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            auth_failures_per_ip_per_minute: 20,
            auth_failures_per_key_per_minute: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// How long the gateway waits for an upstream's response head.
    pub upstream_timeout_ms: u64,
}

/// Forward auth (`GET /v1/verify`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifySettings {
    /// The one header that names the request being authorised; the proxy in
    /// front sets it, and every other spelling a client may send is ignored.
    pub uri_header: String,
}

/// Where product upstreams may point (see `domain/upstream.rs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Also link-local addresses (cloud metadata) and the broker itself.
    pub allow_private: bool,
}

/// The admin console at `/console` (SPEC §11).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    pub enabled: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `keybroker=debug`.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            public_base_url: None,
            workers: None,
            admin: AdminSettings::default(),
            store: StoreSettings::default(),
            signing: SigningSettings::default(),
            secrets: SecretsSettings::default(),
            domain_keys: DomainKeySettings::default(),
            tokens: TokenSettings::default(),
            http: HttpSettings::default(),
            gateway: GatewaySettings::default(),
            verify: VerifySettings::default(),
            upstreams: UpstreamSettings::default(),
            limits: LimitSettings::default(),
            log: LogSettings::default(),
            console: ConsoleSettings::default(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            redis_url: None,
            redis_cluster_nodes: None,
            key_prefix: "kb".into(),
            timeout_ms: 2000,
        }
    }
}

impl Default for DomainKeySettings {
    fn default() -> Self {
        DomainKeySettings {
            propagation_seconds: 300,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            ttl_seconds: 1200,
            leeway_seconds: 30,
            issuer: None,
            max_session_seconds: 86_400,
            refresh_reuse_seconds: 10,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            cors_max_age_seconds: 600,
            header_timeout_ms: 5000,
            body_timeout_ms: 5000,
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            upstream_timeout_ms: 30_000,
        }
    }
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            // What the shipped nginx example (examples/nginx/) sets.
            uri_header: "X-Original-URI".into(),
        }
    }
}

impl VerifySettings {
    /// The header that carries the original method, of the same family as
    /// the URI header: `X-Original-URI` → `X-Original-Method`,
    /// `X-Forwarded-Uri` → `X-Forwarded-Method`. `None` for a name without a
    /// `-` (no family to follow).
    pub fn method_header(&self) -> Option<String> {
        let (family, _) = self.uri_header.rsplit_once('-')?;
        Some(format!("{family}-Method"))
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("{var} must be a whole number, got {value:?}")]
    EnvNumber { var: &'static str, value: String },
    #[error("{var} must be true or false, got {value:?}")]
    EnvBool { var: &'static str, value: String },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Whether the store is shared (a Redis node or a Redis Cluster).
    pub fn shared_store(&self) -> bool {
        self.store.redis_url.is_some() || self.store.redis_cluster_nodes.is_some()
    }

    /// The cluster's seed nodes, when the cluster backend is configured.
    pub fn cluster_nodes(&self) -> Option<Vec<String>> {
        let nodes = self.store.redis_cluster_nodes.as_ref()?;
        Some(
            nodes
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn public_base_url(&self) -> String {
        match &self.public_base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn issuer(&self) -> String {
        self.tokens
            .issuer
            .clone()
            .unwrap_or_else(|| self.public_base_url())
    }

    /// The key-encryption key, decoded; `None` when not configured.
    pub fn key_encryption_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(kek) = &self.signing.key_encryption_key else {
            return Ok(None);
        };
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(kek.expose().trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "KEYBROKER_KEY_ENCRYPTION_KEY (signing.key_encryption_key) must be the base64 of 32 random bytes; {KEK_HOWTO}"
                ))
            })?;
        Ok(Some(bytes))
    }

    /// The signing key PEM, from `signing.key_pem` or `signing.key_file`.
    pub fn signing_key_pem(&self) -> Result<String, ConfigError> {
        match (&self.signing.key_pem, &self.signing.key_file) {
            (Some(pem), _) => Ok(pem.expose().to_owned()),
            (None, Some(path)) => read_key_file(path),
            (None, None) => Err(ConfigError::Invalid(
                "a signing key is required: set KEYBROKER_SIGNING_KEY_FILE (signing.key_file) to a PKCS#8 PEM Ed25519 key, e.g. from `openssl genpkey -algorithm ed25519`".into(),
            )),
        }
    }

    pub fn previous_signing_key_pems(&self) -> Result<Vec<String>, ConfigError> {
        self.signing
            .previous_key_files
            .iter()
            .map(|p| read_key_file(p))
            .collect()
    }
}

fn read_key_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!(
            "cannot read signing key file {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests;
