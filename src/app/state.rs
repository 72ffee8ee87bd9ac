//! The application's state: what every operation may use, built once in
//! `startup`, with the settings grouped by what they govern.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::audit::AuditBuffer;
use super::cache::{CredentialCache, InstanceCache};
use super::origin_index::OriginIndex;
use super::revocation_view::RevocationView;
use super::usage::UsageBuffer;
use crate::clock::Clock;
use crate::domain::credential::{CredentialHash, CredentialHasher};
use crate::domain::instance::MAX_TOKEN_TTL_SECONDS;
use crate::domain::network::Cidr;
use crate::domain::upstream::UpstreamPolicy;
use crate::metrics::Metrics;
use crate::store::{Revocation, Store, StoreError};
use crate::tokens::TokenService;

/// Everything an operation may use.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: TokenService,
    pub hasher: CredentialHasher,
    pub admin: AdminToken,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub usage: UsageBuffer,
    pub audit_buffer: AuditBuffer,
    pub caches: Caches,
    pub revocations: Arc<RevocationView>,
    /// Quota leases of the product rate limits (stores with a feed only).
    pub leases: super::leases::Leases,
    /// Acknowledgements of this process's announcements.
    pub acks: Arc<super::propagation::Acks>,
    pub origins: OriginIndex,
    pub sessions: SessionSettings,
    pub web: WebSettings,
    pub verify: VerifySettings,
    /// Where the admin API lets product upstreams point.
    pub upstreams: Arc<UpstreamPolicy>,
    pub auth_limits: AuthLimits,
    pub domain_keys: DomainKeySettings,
    /// The signing-key ring's settings and key-encryption key.
    pub signing: super::keyring::SigningSettings,
}

/// Per-process copies of store records, each validated against the store as
/// its own module says.
#[derive(Debug, Default)]
pub struct Caches {
    pub instances: InstanceCache,
    /// Experience tokens the gateway accepted.
    pub experience_tokens: CredentialCache,
    /// Secrets and domain keys that `/v1/auth` or introspection accepted.
    pub auth_credentials: CredentialCache,
}

/// Access tokens and the sessions they form.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Token lifetime of a new instance.
    pub default_token_ttl_seconds: u64,
    /// A session cannot be refreshed past this age.
    pub max_session_seconds: u64,
    /// Within this window a refresh of the same token gets the same successor.
    pub refresh_reuse_seconds: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u64,
}

/// How the broker faces HTTP clients.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Base of the URLs in the `apis` map.
    pub public_base_url: String,
    pub max_body_bytes: usize,
    /// A body the broker reads must arrive whole within this.
    pub body_timeout: std::time::Duration,
    pub cors_max_age_seconds: u64,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether `/console` is served.
    pub console_enabled: bool,
}

/// Forward auth: where `/v1/verify` reads the request it authorises. One
/// header each, set by the proxy in front; other spellings a client may send
/// are never read.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// The original URI's header, as configured (error messages name it).
    pub uri_header: String,
    /// The original method's header, of the same family.
    pub method_header: Option<String>,
}

/// Brute-force limits on `/v1/auth` (per minute).
#[derive(Debug, Clone, Copy)]
pub struct AuthLimits {
    pub failures_per_ip_per_minute: u64,
    pub failures_per_key_per_minute: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct DomainKeySettings {
    /// A new domain key is pending for this long.
    pub propagation_seconds: u64,
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The `apis` map: each product's gateway URL on this broker.
    pub fn apis<'a>(
        &self,
        products: impl Iterator<Item = &'a String>,
    ) -> serde_json::Map<String, serde_json::Value> {
        products
            .map(|slug| {
                (
                    slug.clone(),
                    serde_json::Value::String(format!("{}/prod/{slug}", self.web.public_base_url)),
                )
            })
            .collect()
    }
}

impl AppState {
    /// Records a revocation for as long as a token it names could still be
    /// alive: until `keep_until` (unix seconds) plus the leeway.
    pub async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let leeway = i64::try_from(self.sessions.leeway_seconds).unwrap_or(0);
        let ttl = keep_until + leeway - self.now().timestamp();
        self.store.revoke(instance_id, revocation, ttl.max(1)).await
    }

    /// When the last token issued at or before `at` (unix seconds) expires.
    pub fn last_expiry_of_tokens_issued_by(&self, at: i64) -> i64 {
        at + i64::try_from(MAX_TOKEN_TTL_SECONDS).unwrap_or(0)
    }

    /// Kills every token `credential_id` minted, from `at` on.
    pub async fn revoke_credential_tokens(
        &self,
        instance_id: &str,
        credential_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let before = at.timestamp();
        self.revoke(
            instance_id,
            Revocation::Credential {
                id: credential_id,
                before,
            },
            self.last_expiry_of_tokens_issued_by(before),
        )
        .await
    }
}

/// The configured admin token, kept only as an HMAC tag so that checking it is a
/// constant-time comparison of equal-length tags.
pub struct AdminToken {
    hasher: CredentialHasher,
    tag: CredentialHash,
}

impl AdminToken {
    pub fn new(hasher: &CredentialHasher, token: &str) -> Self {
        AdminToken {
            hasher: hasher.clone(),
            tag: hasher.hash(token),
        }
    }

    pub fn verify(&self, presented: &str) -> bool {
        self.hasher.verify(presented, Some(&self.tag))
    }
}
