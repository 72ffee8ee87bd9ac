//! One storage interface, two backends: [`memory::MemoryStore`] for a single
//! process (the default, and for trying things out) and [`redis::RedisStore`],
//! the system of record shared by any number of broker processes.
//!
//! Mutable credential fields (revocation, expiry, domains, last use) are updated
//! one field at a time, never by writing back a whole record that was read
//! earlier, so a concurrent `last_used_at` update can never resurrect a revoked
//! credential.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates an instance together with its first secret, atomically.
    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError>;
    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError>;
    async fn instance_by_api_key(&self, api_key: &str) -> Result<Option<Instance>, StoreError>;
    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError>;
    /// Replaces the instance's settings; `false` when it does not exist.
    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError>;
    /// Deletes the instance and every credential of it; `false` when absent.
    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError>;
    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Credentials of one kind, oldest first.
    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError>;
    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Marks a credential revoked at `at` unless it already was; returns the
    /// record as it is afterwards.
    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Starts a rotation grace: the credential dies at `at`.
    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError>;
    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
