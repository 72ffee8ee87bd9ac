//! In-memory backend: one process, nothing persisted. The default, so that
//! `keybroker serve --demo` works with nothing else running.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Caller, GatewayCheck, GatewayState, Revocation, Revocations, Store, StoreError, Usage, Window,
};
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};

#[derive(Debug, Default)]
struct Inner {
    instances: HashMap<String, Instance>,
    epochs: HashMap<String, u64>,
    by_api_key: HashMap<String, String>,
    credentials: HashMap<String, CredentialRecord>,
    by_hash: HashMap<CredentialHash, String>,
}

/// Short-lived entries (revocations, refresh successors) with their deadline.
#[derive(Debug, Default)]
struct Expiring {
    entries: HashMap<String, (String, Instant)>,
    writes_since_sweep: usize,
}

impl Expiring {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .get(key)
            .filter(|(_, deadline)| *deadline > Instant::now())
            .map(|(v, _)| v.as_str())
    }

    fn put(&mut self, key: String, value: String, ttl_seconds: i64) {
        self.put_ms(key, value, ttl_seconds.max(1).saturating_mul(1000));
    }

    /// Changes a live entry's value and keeps its deadline.
    fn replace(&mut self, key: &str, value: String) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.0 = value;
        }
    }

    fn put_ms(&mut self, key: String, value: String, ttl_ms: i64) {
        let ttl = Duration::from_millis(u64::try_from(ttl_ms.max(1)).unwrap_or(1));
        let deadline = Instant::now() + ttl;
        let kept = self
            .entries
            .get(&key)
            .map(|(_, d)| *d)
            .filter(|d| *d > deadline);
        self.entries.insert(key, (value, kept.unwrap_or(deadline)));
        // Sweep expired entries now and then, so memory stays bounded by what
        // is alive.
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 {
            let now = Instant::now();
            self.entries.retain(|_, (_, d)| *d > now);
            self.writes_since_sweep = 0;
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    expiring: Mutex<Expiring>,
    usage: Mutex<HashMap<String, Usage>>,
    audit: Mutex<HashMap<String, std::collections::VecDeque<String>>>,
}

fn counter_key(scope: Option<&str>, suffix: &str) -> String {
    format!("{}/rl/{suffix}", scope.unwrap_or("-"))
}

fn revocation_key(instance_id: &str, revocation: &Revocation<'_>) -> String {
    match revocation {
        Revocation::Token { jti } => format!("{instance_id}/jti/{jti}"),
        Revocation::Session { sid } => format!("{instance_id}/sid/{sid}"),
        Revocation::Credential { id, .. } => format!("{instance_id}/cred/{id}"),
        Revocation::Instance { .. } => format!("{instance_id}/all"),
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    // A poisoned lock means a panic mid-update; the maps are still consistent
    // because every update below is a handful of inserts with no fallible step.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn expiring(&self) -> std::sync::MutexGuard<'_, Expiring> {
        self.expiring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_credential(
        &self,
        instance_id: &str,
        id: &str,
        change: impl FnOnce(&mut CredentialRecord),
    ) -> Option<CredentialRecord> {
        let mut inner = self.write();
        let record = inner
            .credentials
            .get_mut(id)
            .filter(|c| c.instance_id == instance_id)?;
        change(record);
        Some(record.clone())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner
            .by_api_key
            .insert(instance.api_key.clone(), instance.id.clone());
        inner
            .instances
            .insert(instance.id.clone(), instance.clone());
        inner.epochs.insert(instance.id.clone(), 1);
        inner
            .by_hash
            .insert(first_secret.hash.clone(), first_secret.id.clone());
        inner
            .credentials
            .insert(first_secret.id.clone(), first_secret.clone());
        Ok(())
    }

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        Ok(self.read().instances.get(id).cloned())
    }

    async fn epoch(&self, id: &str) -> Result<u64, StoreError> {
        Ok(self.read().epochs.get(id).copied().unwrap_or(0))
    }

    async fn instance_with_epoch(&self, id: &str) -> Result<Option<(Instance, u64)>, StoreError> {
        let inner = self.read();
        Ok(inner
            .instances
            .get(id)
            .map(|i| (i.clone(), inner.epochs.get(id).copied().unwrap_or(0))))
    }

    async fn instance_id_by_api_key(&self, api_key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.read().by_api_key.get(api_key).cloned())
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let mut all: Vec<Instance> = self.read().instances.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError> {
        let mut inner = self.write();
        match inner.instances.get_mut(&instance.id) {
            Some(existing) => {
                *existing = instance.clone();
                *inner.epochs.entry(instance.id.clone()).or_insert(0) += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let Some(instance) = inner.instances.remove(id) else {
            return Ok(false);
        };
        inner.epochs.remove(id);
        inner.by_api_key.remove(&instance.api_key);
        self.usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let owned: Vec<CredentialRecord> = inner
            .credentials
            .values()
            .filter(|c| c.instance_id == id)
            .cloned()
            .collect();
        for credential in owned {
            inner.by_hash.remove(&credential.hash);
            inner.credentials.remove(&credential.id);
        }
        Ok(true)
    }

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner
            .by_hash
            .insert(credential.hash.clone(), credential.id.clone());
        inner
            .credentials
            .insert(credential.id.clone(), credential.clone());
        Ok(())
    }

    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self
            .read()
            .credentials
            .get(id)
            .filter(|c| c.instance_id == instance_id)
            .cloned())
    }

    async fn credential_with_epoch(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<(Option<CredentialRecord>, u64), StoreError> {
        let inner = self.read();
        let credential = inner
            .credentials
            .get(id)
            .filter(|c| c.instance_id == instance_id)
            .cloned();
        Ok((
            credential,
            inner.epochs.get(instance_id).copied().unwrap_or(0),
        ))
    }

    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let mut found: Vec<CredentialRecord> = self
            .read()
            .credentials
            .values()
            .filter(|c| c.instance_id == instance_id && c.kind == kind)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let inner = self.read();
        Ok(inner
            .by_hash
            .get(hash)
            .and_then(|id| inner.credentials.get(id))
            .cloned())
    }

    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self.update_credential(instance_id, id, |c| {
            c.revoked_at.get_or_insert(at);
        }))
    }

    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self.update_credential(instance_id, id, |c| {
            c.expires_at = Some(c.expires_at.map_or(at, |t| t.min(at)));
        }))
    }

    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self.update_credential(instance_id, id, |c| c.domains = domains.to_vec()))
    }

    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_credential(instance_id, id, |c| {
            c.last_used_at = Some(c.last_used_at.map_or(at, |t| t.max(at)));
        });
        Ok(())
    }

    async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        ttl_seconds: i64,
    ) -> Result<(), StoreError> {
        let key = revocation_key(instance_id, &revocation);
        let mut expiring = self.expiring();
        let current = expiring.get(&key).and_then(|v| v.parse::<i64>().ok());
        let value = match revocation {
            Revocation::Token { .. } | Revocation::Session { .. } => 1,
            Revocation::Credential { before, .. } => current.map_or(before, |c| c.min(before)),
            Revocation::Instance { before } => current.map_or(before, |c| c.max(before)),
        };
        expiring.put(key, value.to_string(), ttl_seconds);
        Ok(())
    }

    async fn revocations(
        &self,
        instance_id: &str,
        jti: &str,
        sid: &str,
        credential_id: &str,
    ) -> Result<Revocations, StoreError> {
        let expiring = self.expiring();
        let time = |r: Revocation<'_>| {
            expiring
                .get(&revocation_key(instance_id, &r))
                .and_then(|v| v.parse().ok())
        };
        Ok(Revocations {
            jti: expiring
                .get(&revocation_key(instance_id, &Revocation::Token { jti }))
                .is_some(),
            sid: expiring
                .get(&revocation_key(instance_id, &Revocation::Session { sid }))
                .is_some(),
            credential_before: time(Revocation::Credential {
                id: credential_id,
                before: 0,
            }),
            instance_before: time(Revocation::Instance { before: 0 }),
        })
    }

    async fn remember_successor(
        &self,
        instance_id: &str,
        jti: &str,
        record: &str,
        ttl_seconds: i64,
    ) -> Result<String, StoreError> {
        let key = format!("{instance_id}/succ/{jti}");
        let mut expiring = self.expiring();
        if let Some(existing) = expiring.get(&key) {
            return Ok(existing.to_owned());
        }
        expiring.put(key, record.to_owned(), ttl_seconds);
        Ok(record.to_owned())
    }

    async fn successor(&self, instance_id: &str, jti: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .expiring()
            .get(&format!("{instance_id}/succ/{jti}"))
            .map(str::to_owned))
    }

    async fn hit(&self, scope: Option<&str>, windows: &[Window]) -> Result<Vec<u64>, StoreError> {
        let mut expiring = self.expiring();
        let mut counts = Vec::with_capacity(windows.len());
        for window in windows {
            let key = counter_key(scope, &window.suffix);
            let count = expiring
                .get(&key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            if count == 1 {
                expiring.put_ms(key, count.to_string(), window.ttl_ms);
            } else {
                expiring.replace(&key, count.to_string());
            }
            counts.push(count);
            if count > window.limit {
                break;
            }
        }
        Ok(counts)
    }

    async fn peek(&self, scope: Option<&str>, suffixes: &[String]) -> Result<Vec<u64>, StoreError> {
        let expiring = self.expiring();
        Ok(suffixes
            .iter()
            .map(|s| {
                expiring
                    .get(&counter_key(scope, s))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            })
            .collect())
    }

    async fn add_usage(
        &self,
        instance_id: &str,
        increments: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        if !self.read().instances.contains_key(instance_id) {
            return Ok(());
        }
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let of_instance = usage.entry(instance_id.to_owned()).or_default();
        for (credential, counter, amount) in increments {
            let slot = of_instance
                .entry(credential.clone())
                .or_default()
                .entry(counter.clone())
                .or_insert(0);
            if counter == "last_used_at" {
                *slot = (*slot).max(*amount);
            } else {
                *slot += amount;
            }
        }
        Ok(())
    }

    async fn usage(&self, instance_id: &str) -> Result<Usage, StoreError> {
        let usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        Ok(usage.get(instance_id).cloned().unwrap_or_default())
    }

    async fn append_audit(
        &self,
        instance_id: &str,
        entry: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        if !self.read().instances.contains_key(instance_id) {
            return Ok(());
        }
        let mut audit = self.audit.lock().unwrap_or_else(|e| e.into_inner());
        let log = audit.entry(instance_id.to_owned()).or_default();
        log.push_front(entry.to_owned());
        log.truncate(keep);
        Ok(())
    }

    async fn audit(
        &self,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StoreError> {
        let audit = self.audit.lock().unwrap_or_else(|e| e.into_inner());
        Ok(audit.get(instance_id).map_or((Vec::new(), 0), |log| {
            (
                log.iter().skip(offset).take(limit).cloned().collect(),
                log.len(),
            )
        }))
    }

    async fn gateway_check(&self, check: GatewayCheck<'_>) -> Result<GatewayState, StoreError> {
        let (epoch, credential) = {
            let inner = self.read();
            let epoch = inner.epochs.get(check.instance_id).copied().unwrap_or(0);
            let credential = match check.caller {
                Caller::Experience { credential_id } => inner
                    .credentials
                    .get(credential_id)
                    .filter(|c| c.instance_id == check.instance_id)
                    .cloned(),
                Caller::Token { .. } => None,
            };
            (epoch, credential)
        };
        let revocations = match check.caller {
            Caller::Token {
                jti,
                sid,
                credential_id,
            } => {
                self.revocations(check.instance_id, jti, sid, credential_id)
                    .await?
            }
            Caller::Experience { .. } => Revocations::default(),
        };
        let counts = self.hit(Some(check.instance_id), check.windows).await?;
        Ok(GatewayState {
            epoch,
            revocations,
            credential_exists: credential.is_some(),
            credential_dead_at: credential.and_then(|c| c.dead_since()),
            counts,
        })
    }
}
