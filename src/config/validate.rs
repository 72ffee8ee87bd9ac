//! The start-up checks: a broker refuses to start with a missing or weak
//! secret, or a setting out of range, and says which one.

use super::{ConfigError, Settings, MIN_ADMIN_TOKEN_LEN, MIN_PEPPER_LEN};

impl Settings {
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
        if !is_header_name(&self.verify.uri_header) {
            return invalid(format!(
                "verify.uri_header: {:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)",
                self.verify.uri_header
            ));
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
        if self.http.header_timeout_ms == 0 || self.http.body_timeout_ms == 0 {
            return invalid(
                "http.header_timeout_ms and http.body_timeout_ms must be at least 1".into(),
            );
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
        if self.signing.jwks_max_age_seconds >= self.signing.publish_lead_seconds {
            return invalid(format!(
                "signing.jwks_max_age_seconds ({}) must be shorter than signing.publish_lead_seconds ({}): a verifier caching the JWKS must see a new key before it signs",
                self.signing.jwks_max_age_seconds, self.signing.publish_lead_seconds
            ));
        }
        if self.store.redis_url.is_some() && self.store.redis_cluster_nodes.is_some() {
            return invalid(
                "KEYBROKER_REDIS_URL (store.redis_url) and KEYBROKER_REDIS_CLUSTER_NODES (store.redis_cluster_nodes) select different backends: set one of them, not both".into(),
            );
        }
        if let Some(nodes) = self.cluster_nodes() {
            if nodes.is_empty() || nodes.iter().any(|n| !n.starts_with("redis://")) {
                return invalid(
                    "KEYBROKER_REDIS_CLUSTER_NODES (store.redis_cluster_nodes) must be a comma-separated list of redis://host:port seed nodes".into(),
                );
            }
        }
        if self.shared_store() && self.signing.key_encryption_key.is_none() {
            return invalid(format!(
                "a key-encryption key is required with Redis: set KEYBROKER_KEY_ENCRYPTION_KEY (signing.key_encryption_key) to the base64 of 32 random bytes, the same on every process; {}",
                super::KEK_HOWTO
            ));
        }
        self.key_encryption_key()?;
        if self.workers == Some(0) {
            return invalid("workers must be at least 1".into());
        }
        Ok(())
    }
}

/// An HTTP field name: one or more `tchar`s (RFC 9110 §5.6.2).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
