//! Instances (customer projects), their products and their stored credentials.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::credential::{ApiKey, CredentialHash, CredentialKind};
use super::experience::{ExperienceKind, DEFAULT_RATE_LIMIT_PER_MINUTE};

pub const MIN_TOKEN_TTL_SECONDS: u64 = 60;
pub const MAX_TOKEN_TTL_SECONDS: u64 = 86_400;

/// A product of an instance, which is also an experience (SPEC §1): the
/// `products` map and the experiences API are two views of one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub upstream: String,
    #[serde(default)]
    pub kind: ExperienceKind,
    /// Origins allowed to call it (`https://app.example.com`,
    /// `https://*.example.com`); empty means every origin.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: u32,
    #[serde(default)]
    pub daily_cap: Option<u32>,
    /// `None`: the kind's defaults.
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Id of the current experience token, if one was generated.
    #[serde(default)]
    pub token_id: Option<String>,
    /// Whether the product's `Set-Cookie` headers reach callers. Off by
    /// default: the product shares the broker's origin, so its cookies
    /// would be set for every other product behind the broker too.
    #[serde(default)]
    pub pass_set_cookie: bool,
}

fn default_rate_limit() -> u32 {
    DEFAULT_RATE_LIMIT_PER_MINUTE
}

impl Product {
    pub fn new(upstream: String) -> Self {
        Product {
            upstream,
            kind: ExperienceKind::default(),
            allowed_origins: Vec::new(),
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            daily_cap: None,
            operations: None,
            token_id: None,
            pass_set_cookie: false,
        }
    }

    /// The operations this experience allows; `None` means all.
    pub fn allowed_operations(&self) -> Option<Vec<String>> {
        match &self.operations {
            Some(ops) => Some(ops.clone()),
            None => self
                .kind
                .default_operations()
                .map(|ops| ops.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    pub fn allows_operation(&self, operation: &str) -> bool {
        match &self.operations {
            Some(ops) => ops.iter().any(|o| o == operation),
            None => self
                .kind
                .default_operations()
                .is_none_or(|ops| ops.contains(&operation)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub products: BTreeMap<String, Product>,
    pub token_ttl_seconds: u64,
    pub created_at: DateTime<Utc>,
}

impl Instance {
    pub fn new(
        name: String,
        products: BTreeMap<String, Product>,
        token_ttl_seconds: u64,
        now: DateTime<Utc>,
    ) -> (Self, ApiKey) {
        let api_key = ApiKey::generate();
        let instance = Instance {
            id: new_id("ins_"),
            name,
            api_key: api_key.expose().to_owned(),
            products,
            token_ttl_seconds,
            created_at: now,
        };
        (instance, api_key)
    }
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Pending,
    Active,
    Expiring,
    Revoked,
}

/// What the store keeps of a secret, domain key or experience token: never the
/// value, only its keyed hash and the mask shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub id: String,
    pub instance_id: String,
    pub kind: CredentialKind,
    pub hash: CredentialHash,
    pub masked: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set by revocation; the credential is dead from then on.
    pub revoked_at: Option<DateTime<Utc>>,
    /// End of a rotation grace period; the credential dies then.
    pub expires_at: Option<DateTime<Utc>>,
    /// Domain keys only: the domains it is valid from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Domain keys only: when it leaves `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at: Option<DateTime<Utc>>,
    /// Experience tokens only: the product slug it is valid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experience: Option<String>,
}

impl CredentialRecord {
    pub fn new(
        instance_id: &str,
        kind: CredentialKind,
        hash: CredentialHash,
        masked: String,
        now: DateTime<Utc>,
    ) -> Self {
        CredentialRecord {
            id: new_id(kind.id_prefix()),
            instance_id: instance_id.to_owned(),
            kind,
            hash,
            masked,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            domains: Vec::new(),
            active_at: None,
            experience: None,
        }
    }

    pub fn new_domain_key(
        instance_id: &str,
        hash: CredentialHash,
        masked: String,
        domains: Vec<String>,
        propagation: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        CredentialRecord {
            domains,
            active_at: Some(now + propagation),
            ..Self::new(instance_id, CredentialKind::DomainKey, hash, masked, now)
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> CredentialStatus {
        if self.revoked_at.is_some_and(|t| t <= now) || self.expires_at.is_some_and(|t| t <= now) {
            CredentialStatus::Revoked
        } else if self.active_at.is_some_and(|t| t > now) {
            CredentialStatus::Pending
        } else if self.expires_at.is_some() {
            CredentialStatus::Expiring
        } else {
            CredentialStatus::Active
        }
    }

    /// When the credential stopped (or will stop) being valid, if it does.
    pub fn dead_since(&self) -> Option<DateTime<Utc>> {
        match (self.revoked_at, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Product slugs appear in URLs (`/prod/{slug}/…`) and Redis keys.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credential::CredentialHasher;

    fn record(now: DateTime<Utc>) -> CredentialRecord {
        let hasher = CredentialHasher::new(b"0123456789abcdef0123456789abcdef");
        CredentialRecord::new_domain_key(
            "ins_1",
            hasher.hash("x"),
            "m".into(),
            vec!["example.com".into()],
            Duration::seconds(300),
            now,
        )
    }

    #[test]
    fn domain_key_is_pending_until_active_at() {
        let now = Utc::now();
        let key = record(now);
        assert_eq!(key.status(now), CredentialStatus::Pending);
        assert_eq!(
            key.status(now + Duration::seconds(300)),
            CredentialStatus::Active
        );
    }

    #[test]
    fn grace_then_revoked() {
        let now = Utc::now();
        let mut key = record(now - Duration::seconds(600));
        key.expires_at = Some(now + Duration::seconds(60));
        assert_eq!(key.status(now), CredentialStatus::Expiring);
        assert_eq!(
            key.status(now + Duration::seconds(60)),
            CredentialStatus::Revoked
        );
    }
}
