//! Settings, layered: documented defaults → TOML file → `KEYBROKER_*` environment
//! variables. The process refuses to start when something required is missing or
//! weak, and says which setting and why (fail fast, never a half-secure broker).
//!
//! The names in SPEC §9 are stable; `config/default.toml` documents every key.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const MIN_ADMIN_TOKEN_LEN: usize = 32;
pub const MIN_PEPPER_LEN: usize = 32;

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
    pub limits: LimitSettings,
    pub log: LogSettings,
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
    pub key_prefix: String,
    /// Connect and command timeout for Redis, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    pub key_file: Option<PathBuf>,
    /// The PEM itself, for platforms that pass secrets as variables.
    pub key_pem: Option<Sensitive>,
    /// Keys being rotated out: they no longer sign but still verify.
    pub previous_key_files: Vec<PathBuf>,
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
            limits: LimitSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            redis_url: None,
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
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Number,
    /// Comma-separated.
    List,
}

/// Every environment variable and the TOML key it overrides.
const ENV: &[(&str, &str, Kind)] = &[
    ("KEYBROKER_LISTEN", "listen", Kind::Text),
    ("KEYBROKER_PUBLIC_BASE_URL", "public_base_url", Kind::Text),
    ("KEYBROKER_WORKERS", "workers", Kind::Number),
    ("KEYBROKER_ADMIN_TOKEN", "admin.token", Kind::Text),
    ("KEYBROKER_REDIS_URL", "store.redis_url", Kind::Text),
    ("KEYBROKER_REDIS_KEY_PREFIX", "store.key_prefix", Kind::Text),
    (
        "KEYBROKER_REDIS_TIMEOUT_MS",
        "store.timeout_ms",
        Kind::Number,
    ),
    ("KEYBROKER_SIGNING_KEY_FILE", "signing.key_file", Kind::Text),
    ("KEYBROKER_SIGNING_KEY", "signing.key_pem", Kind::Text),
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
        "KEYBROKER_AUTH_FAILURES_PER_IP",
        "limits.auth_failures_per_ip_per_minute",
        Kind::Number,
    ),
    (
        "KEYBROKER_AUTH_FAILURES_PER_KEY",
        "limits.auth_failures_per_key_per_minute",
        Kind::Number,
    ),
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

    /// Checks everything that does not need I/O; called before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        match &self.admin.token {
            None => {
                return invalid(
                    "an admin token is required: set KEYBROKER_ADMIN_TOKEN (admin.token), at least 32 characters".into(),
                )
            }
            Some(t) if t.expose().chars().count() < MIN_ADMIN_TOKEN_LEN => {
                return invalid(format!(
                    "the admin token is too short: at least {MIN_ADMIN_TOKEN_LEN} characters are required"
                ))
            }
            Some(_) => {}
        }
        match &self.secrets.pepper {
            None => {
                return invalid(
                    "a pepper is required: set KEYBROKER_PEPPER (secrets.pepper), at least 32 bytes of random data".into(),
                )
            }
            Some(p) if p.expose().len() < MIN_PEPPER_LEN => {
                return invalid(format!(
                    "the pepper is too short: at least {MIN_PEPPER_LEN} bytes are required"
                ))
            }
            Some(_) => {}
        }
        let t = &self.tokens;
        if !(60..=86_400).contains(&t.ttl_seconds) {
            return invalid("tokens.ttl_seconds must be between 60 and 86400".into());
        }
        if t.leeway_seconds > 300 {
            return invalid("tokens.leeway_seconds must be at most 300".into());
        }
        if t.max_session_seconds < t.ttl_seconds {
            return invalid(
                "tokens.max_session_seconds must be at least tokens.ttl_seconds".into(),
            );
        }
        if t.refresh_reuse_seconds > 60 {
            return invalid("tokens.refresh_reuse_seconds must be at most 60".into());
        }
        if self.gateway.upstream_timeout_ms == 0 {
            return invalid("gateway.upstream_timeout_ms must be at least 1".into());
        }
        for proxy in &self.http.trusted_proxies {
            if proxy.parse::<crate::domain::network::Cidr>().is_err() {
                return invalid(format!(
                    "http.trusted_proxies: {proxy:?} is not an IP address or CIDR block"
                ));
            }
        }
        if self.limits.auth_failures_per_ip_per_minute == 0
            || self.limits.auth_failures_per_key_per_minute == 0
        {
            return invalid("limits.auth_failures_* must be at least 1".into());
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes must be at least 1024".into());
        }
        if self.store.key_prefix.is_empty() || self.store.key_prefix.contains(['{', '}', ' ']) {
            return invalid("store.key_prefix must be non-empty, without braces or spaces".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid("log.format must be `text` or `json`".into());
        }
        if self.workers == Some(0) {
            return invalid("workers must be at least 1".into());
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |var| owned.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::load_from(None, env_of(&[])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.tokens.ttl_seconds, 1200);
        assert_eq!(s.tokens.leeway_seconds, 30);
        assert_eq!(s.domain_keys.propagation_seconds, 300);
        assert!(s.store.redis_url.is_none());
        assert_eq!(s.public_base_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("kb-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kb.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[tokens]\nttl_seconds = 600\nleeway_seconds = 5\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env_of(&[("KEYBROKER_TOKEN_TTL_SECONDS", "900")]),
        )
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.tokens.ttl_seconds, 900);
        assert_eq!(s.tokens.leeway_seconds, 5);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn every_environment_variable_names_a_real_setting() {
        for &(var, _, kind) in ENV {
            let value = match kind {
                Kind::Text => "127.0.0.1:1",
                Kind::Number => "7",
                Kind::List => "127.0.0.1, 10.0.0.0/8",
            };
            let loaded = Settings::load_from(None, env_of(&[(var, value)]));
            assert!(loaded.is_ok(), "{var}: {:?}", loaded.err());
        }
        let s = Settings::load_from(
            None,
            env_of(&[("KEYBROKER_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]),
        )
        .unwrap();
        assert_eq!(s.http.trusted_proxies, vec!["127.0.0.1", "10.0.0.0/8"]);
    }

    #[test]
    fn unknown_keys_and_bad_numbers_are_refused() {
        let e = Settings::load_from(None, env_of(&[("KEYBROKER_LEEWAY_SECONDS", "soon")]));
        assert!(matches!(e, Err(ConfigError::EnvNumber { .. })));
        let dir = std::env::temp_dir().join(format!("kb-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kb.toml");
        std::fs::write(&file, "[tokens]\nttl = 5\n").unwrap();
        assert!(Settings::load_from(Some(&file), env_of(&[])).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn weak_or_missing_secrets_fail_validation() {
        let mut s = Settings::default();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("admin token"));
        s.admin.token = Some(Sensitive::new("short"));
        assert!(s.validate().unwrap_err().to_string().contains("too short"));
        s.admin.token = Some(Sensitive::new("a".repeat(32)));
        assert!(s.validate().unwrap_err().to_string().contains("pepper"));
        s.secrets.pepper = Some(Sensitive::new("p".repeat(32)));
        assert!(s.validate().is_ok());
        assert!(s.signing_key_pem().is_err());
    }
}
