//! Credential operations: provisioning an instance, issuing, revoking and
//! rotating secrets, domain keys and experience tokens, and the one check that
//! a presented credential is genuine.
//!
//! A credential's value exists only in the result of the call that created
//! it; the store keeps its keyed hash and its mask. Revoking or rotating a
//! credential also revokes the tokens it minted (SPEC §5).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;

use super::AppState;
use crate::domain::credential::{ApiKey, CredentialKind, DomainKey, ExperienceToken, Secret};
use crate::domain::instance::{CredentialRecord, CredentialStatus, Instance, Product};
use crate::domain::settings::Grace;
use crate::error::ApiError;

/// The name operators read for a kind of credential (in 404s).
pub fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ApiKey => "API key",
        CredentialKind::Secret => "secret",
        CredentialKind::DomainKey => "domain key",
        CredentialKind::ExperienceToken => "experience token",
    }
}

impl AppState {
    /// An instance, or 404.
    pub async fn load_instance(&self, id: &str) -> Result<Instance, ApiError> {
        self.store
            .get_instance(id)
            .await?
            .ok_or(ApiError::NotFound { what: "instance" })
    }

    /// A stored credential of one kind, or 404 naming it.
    pub async fn load_credential(
        &self,
        instance_id: &str,
        id: &str,
        kind: CredentialKind,
    ) -> Result<CredentialRecord, ApiError> {
        self.store
            .get_credential(instance_id, id)
            .await?
            .filter(|c| c.kind == kind)
            .ok_or(ApiError::NotFound {
                what: kind_name(kind),
            })
    }

    /// The credentials of one kind of an existing instance, with buffered
    /// usage written first so that `last_used_at` is current.
    pub async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, ApiError> {
        self.usage.flush(self.store.as_ref()).await?;
        let instance = self.load_instance(instance_id).await?;
        Ok(self.store.list_credentials(&instance.id, kind).await?)
    }

    /// Creates an instance with its API key and first secret; the secret's
    /// value is returned here and never again.
    pub async fn provision_instance(
        &self,
        name: String,
        products: BTreeMap<String, Product>,
        token_ttl_seconds: u64,
    ) -> Result<(Instance, Secret, CredentialRecord), ApiError> {
        let now = self.now();
        let (instance, _) = Instance::new(name, products, token_ttl_seconds, now);
        let secret = Secret::generate();
        let record = CredentialRecord::new(
            &instance.id,
            CredentialKind::Secret,
            self.hasher.hash(secret.expose()),
            secret.masked(),
            now,
        );
        self.store.insert_instance(&instance, &record).await?;
        tracing::info!(instance = %instance.id, "instance created");
        Ok((instance, secret, record))
    }

    pub async fn issue_secret(
        &self,
        instance_id: &str,
    ) -> Result<(Secret, CredentialRecord), ApiError> {
        let secret = Secret::generate();
        let record = CredentialRecord::new(
            instance_id,
            CredentialKind::Secret,
            self.hasher.hash(secret.expose()),
            secret.masked(),
            self.now(),
        );
        self.store.insert_credential(&record).await?;
        Ok((secret, record))
    }

    /// Creates a domain key that becomes active after `propagation`.
    pub async fn issue_domain_key(
        &self,
        instance_id: &str,
        domains: Vec<String>,
        propagation: Duration,
    ) -> Result<(DomainKey, CredentialRecord), ApiError> {
        let key = DomainKey::generate();
        let record = CredentialRecord::new_domain_key(
            instance_id,
            self.hasher.hash(key.expose()),
            key.masked(),
            domains,
            propagation,
            self.now(),
        );
        self.store.insert_credential(&record).await?;
        Ok((key, record))
    }

    /// The configured delay before a new domain key is active.
    pub fn domain_key_propagation(&self) -> Duration {
        Duration::seconds(
            i64::try_from(self.domain_keys.propagation_seconds).unwrap_or(i64::MAX / 1000),
        )
    }

    /// Generates an experience token for `slug` and stores it (not yet linked).
    pub async fn issue_experience_token(
        &self,
        instance_id: &str,
        slug: &str,
    ) -> Result<(ExperienceToken, CredentialRecord), ApiError> {
        let token = ExperienceToken::generate();
        let mut record = CredentialRecord::new(
            instance_id,
            CredentialKind::ExperienceToken,
            self.hasher.hash(token.expose()),
            token.masked(),
            self.now(),
        );
        record.experience = Some(slug.to_owned());
        self.store.insert_credential(&record).await?;
        Ok((token, record))
    }

    /// Revokes a secret or domain key at once, and every token it minted.
    pub async fn revoke_with_tokens(
        &self,
        instance_id: &str,
        id: &str,
        kind: CredentialKind,
    ) -> Result<CredentialRecord, ApiError> {
        self.load_credential(instance_id, id, kind).await?;
        let now = self.now();
        let record = self
            .store
            .revoke_credential(instance_id, id, now)
            .await?
            .ok_or(ApiError::NotFound {
                what: kind_name(kind),
            })?;
        self.revoke_credential_tokens(instance_id, id, now).await?;
        Ok(record)
    }

    /// Issues a new secret; the old one and its tokens keep working for the
    /// grace (0: they die now). Returns the new secret and both records.
    pub async fn rotate_secret(
        &self,
        instance_id: &str,
        id: &str,
        grace: Grace,
    ) -> Result<(Secret, CredentialRecord, CredentialRecord), ApiError> {
        let old = self
            .load_credential(instance_id, id, CredentialKind::Secret)
            .await?;
        let now = self.now();
        if old.status(now) == CredentialStatus::Revoked {
            return Err(ApiError::AlreadyRevoked(
                "a revoked secret cannot be rotated; create a new one",
            ));
        }
        let (secret, record) = self.issue_secret(instance_id).await?;
        let ends = now + grace.duration();
        let old = self
            .store
            .expire_credential(instance_id, id, ends)
            .await?
            .ok_or(ApiError::NotFound { what: "secret" })?;
        self.revoke_credential_tokens(instance_id, id, ends).await?;
        Ok((secret, record, old))
    }

    /// Revokes every live experience token of `slug` (when it is deleted).
    pub async fn revoke_experience_tokens(
        &self,
        instance_id: &str,
        slug: &str,
    ) -> Result<(), ApiError> {
        let now = self.now();
        for record in self
            .store
            .list_credentials(instance_id, CredentialKind::ExperienceToken)
            .await?
        {
            if record.experience.as_deref() == Some(slug)
                && record.status(now) != CredentialStatus::Revoked
            {
                self.store
                    .revoke_credential(instance_id, &record.id, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Finds the instance of `api_key` and the live credential `value` of
    /// `kind` belonging to it, or answers the one uniform 401.
    ///
    /// A credential accepted before is looked up where it lives, together
    /// with its instance's epoch, in one store round trip: its status and
    /// domains are read fresh every time, and the cached instance is used only
    /// while its epoch is current. Anything else takes the full lookup.
    pub async fn authenticate(
        &self,
        api_key: &ApiKey,
        value: &str,
        kind: CredentialKind,
    ) -> Result<(Arc<Instance>, CredentialRecord), ApiError> {
        let hash = self.hasher.hash(value);
        let known = self.caches.auth_credentials.get(&hash);
        let was_known = known.is_some();
        let cached = self.caches.instances.cached_by_api_key(api_key.expose());
        let (instance, credential) = match (known, cached) {
            (Some(known), Some(cached)) if known.instance_id == cached.instance.id => {
                let (credential, epoch) = self
                    .store
                    .credential_with_epoch(&known.instance_id, &known.id)
                    .await?;
                let instance = if epoch == cached.epoch {
                    Some(cached.instance)
                } else {
                    self.caches
                        .instances
                        .by_id(self.store.as_ref(), &known.instance_id, true)
                        .await?
                        .map(|fresh| fresh.instance)
                };
                (instance, credential)
            }
            _ => {
                let (instance, credential) = tokio::try_join!(
                    self.caches
                        .instances
                        .by_api_key(self.store.as_ref(), api_key.expose(), true),
                    self.store.credential_by_hash(&hash),
                )?;
                (instance.map(|i| i.instance), credential)
            }
        };
        let genuine = self
            .hasher
            .verify(value, credential.as_ref().map(|c| &c.hash));
        match (instance, credential) {
            (Some(instance), Some(credential))
                if genuine
                    && credential.kind == kind
                    && credential.instance_id == instance.id
                    && credential.status(self.now()) != CredentialStatus::Revoked =>
            {
                if !was_known {
                    self.caches.auth_credentials.insert(credential.clone());
                }
                Ok((instance, credential))
            }
            _ => Err(ApiError::InvalidCredentials),
        }
    }
}
