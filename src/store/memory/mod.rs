//! In-memory backend: one process, nothing persisted. The default, so that
//! `keybroker serve --demo` works with nothing else running.
//!
//! The [`Store`] implementation below only dispatches, by area, as the Redis
//! backend does: `instances`, `credentials`, `revocations`, `counters` (rate
//! limits, usage, audit) and `gateway` (the product hot path's one call).
//! Short-lived entries and their names live in `expiring`. The backend cannot
//! fail, so each area returns plain values.

mod counters;
mod credentials;
mod expiring;
mod gateway;
mod instances;
mod revocations;

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    GatewayCheck, GatewayState, Revocation, Revocations, Step, Store, StoreError, Usage,
    UsageSeries, Window,
};
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};
use expiring::Expiring;

#[derive(Debug, Default)]
struct Inner {
    instances: HashMap<String, Instance>,
    epochs: HashMap<String, u64>,
    by_api_key: HashMap<String, String>,
    credentials: HashMap<String, CredentialRecord>,
    by_hash: HashMap<CredentialHash, String>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    expiring: Mutex<Expiring>,
    usage: Mutex<HashMap<String, Usage>>,
    /// (instance, step, step start) → counts; pruned past each step's retention.
    usage_series: Mutex<std::collections::BTreeMap<(String, Step, i64), Usage>>,
    audit: Mutex<HashMap<String, std::collections::VecDeque<String>>>,
    /// The signing-key ring, kid → JSON.
    ring: Mutex<std::collections::BTreeMap<String, String>>,
    ring_audit: Mutex<std::collections::VecDeque<String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    // A poisoned lock means a panic mid-update; the maps are still consistent
    // because every update in this module is a handful of inserts with no
    // fallible step.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn ring_map(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, String>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expiring(&self) -> std::sync::MutexGuard<'_, Expiring> {
        self.expiring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn ring(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.ring_map().values().cloned().collect())
    }

    async fn ring_bootstrap(&self, kid: &str, entry: &str) -> Result<bool, StoreError> {
        let mut ring = self.ring_map();
        if !ring.is_empty() {
            return Ok(false);
        }
        ring.insert(kid.to_owned(), entry.to_owned());
        Ok(true)
    }

    async fn ring_write(
        &self,
        put: &[(String, String)],
        remove: &[String],
        audit: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut log = self.ring_audit.lock().unwrap_or_else(|e| e.into_inner());
        log.push_front(audit.to_owned());
        log.truncate(keep);
        let mut ring = self.ring_map();
        for (kid, entry) in put {
            ring.insert(kid.clone(), entry.clone());
        }
        for kid in remove {
            ring.remove(kid);
        }
        Ok(())
    }

    async fn ring_audit(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let log = self.ring_audit.lock().unwrap_or_else(|e| e.into_inner());
        Ok(log.iter().take(limit).cloned().collect())
    }

    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError> {
        instances::insert(self, instance, first_secret);
        Ok(())
    }

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        Ok(instances::get(self, id))
    }

    async fn epoch(&self, id: &str) -> Result<u64, StoreError> {
        Ok(instances::epoch(self, id))
    }

    async fn instance_with_epoch(&self, id: &str) -> Result<Option<(Instance, u64)>, StoreError> {
        Ok(instances::with_epoch(self, id))
    }

    async fn instance_id_by_api_key(&self, api_key: &str) -> Result<Option<String>, StoreError> {
        Ok(instances::id_by_api_key(self, api_key))
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        Ok(instances::list(self))
    }

    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError> {
        Ok(instances::update(self, instance))
    }

    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError> {
        Ok(instances::delete(self, id))
    }

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError> {
        credentials::insert(self, credential);
        Ok(())
    }

    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::get(self, instance_id, id))
    }

    async fn credential_with_epoch(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<(Option<CredentialRecord>, u64), StoreError> {
        Ok(credentials::with_epoch(self, instance_id, id))
    }

    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        Ok(credentials::list(self, instance_id, kind))
    }

    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::by_hash(self, hash))
    }

    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::revoke(self, instance_id, id, at))
    }

    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::expire(self, instance_id, id, at))
    }

    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(credentials::set_domains(self, instance_id, id, domains))
    }

    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        credentials::touch(self, instance_id, id, at);
        Ok(())
    }

    async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        ttl_seconds: i64,
    ) -> Result<(), StoreError> {
        revocations::revoke(self, instance_id, revocation, ttl_seconds);
        Ok(())
    }

    async fn revocations(
        &self,
        instance_id: &str,
        jti: &str,
        sid: &str,
        credential_id: &str,
    ) -> Result<Revocations, StoreError> {
        Ok(revocations::of_token(
            self,
            instance_id,
            jti,
            sid,
            credential_id,
        ))
    }

    async fn remember_successor(
        &self,
        instance_id: &str,
        jti: &str,
        record: &str,
        ttl_seconds: i64,
    ) -> Result<String, StoreError> {
        Ok(revocations::remember_successor(
            self,
            instance_id,
            jti,
            record,
            ttl_seconds,
        ))
    }

    async fn successor(&self, instance_id: &str, jti: &str) -> Result<Option<String>, StoreError> {
        Ok(revocations::successor(self, instance_id, jti))
    }

    async fn hit(&self, scope: Option<&str>, windows: &[Window]) -> Result<Vec<u64>, StoreError> {
        Ok(counters::hit(self, scope, windows))
    }

    async fn peek(&self, scope: Option<&str>, suffixes: &[String]) -> Result<Vec<u64>, StoreError> {
        Ok(counters::peek(self, scope, suffixes))
    }

    async fn add_usage(
        &self,
        instance_id: &str,
        increments: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        counters::add_usage(self, instance_id, increments);
        Ok(())
    }

    async fn usage(&self, instance_id: &str) -> Result<Usage, StoreError> {
        Ok(counters::usage(self, instance_id))
    }

    async fn usage_series(
        &self,
        instance_id: &str,
        step: Step,
        from: i64,
        to: i64,
    ) -> Result<UsageSeries, StoreError> {
        Ok(counters::usage_series(self, instance_id, step, from, to))
    }

    async fn append_audit(
        &self,
        instance_id: &str,
        entry: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        counters::append_audit(self, instance_id, entry, keep);
        Ok(())
    }

    async fn audit(
        &self,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StoreError> {
        Ok(counters::audit(self, instance_id, offset, limit))
    }

    async fn gateway_check(&self, check: GatewayCheck<'_>) -> Result<GatewayState, StoreError> {
        Ok(gateway::check(self, check))
    }
}
