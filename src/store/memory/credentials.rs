//! Credentials and their hash index. Mutable fields change in place under the
//! write lock, one field per call (see the `store` module doc for why).

use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::CredentialRecord;

pub(super) fn insert(store: &MemoryStore, credential: &CredentialRecord) {
    let mut inner = store.write();
    inner
        .by_hash
        .insert(credential.hash.clone(), credential.id.clone());
    inner
        .credentials
        .insert(credential.id.clone(), credential.clone());
}

pub(super) fn get(store: &MemoryStore, instance_id: &str, id: &str) -> Option<CredentialRecord> {
    store
        .read()
        .credentials
        .get(id)
        .filter(|c| c.instance_id == instance_id)
        .cloned()
}

pub(super) fn with_epoch(
    store: &MemoryStore,
    instance_id: &str,
    id: &str,
) -> (Option<CredentialRecord>, u64) {
    let inner = store.read();
    let credential = inner
        .credentials
        .get(id)
        .filter(|c| c.instance_id == instance_id)
        .cloned();
    (
        credential,
        inner.epochs.get(instance_id).copied().unwrap_or(0),
    )
}

pub(super) fn list(
    store: &MemoryStore,
    instance_id: &str,
    kind: CredentialKind,
) -> Vec<CredentialRecord> {
    let mut found: Vec<CredentialRecord> = store
        .read()
        .credentials
        .values()
        .filter(|c| c.instance_id == instance_id && c.kind == kind)
        .cloned()
        .collect();
    found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    found
}

pub(super) fn by_hash(store: &MemoryStore, hash: &CredentialHash) -> Option<CredentialRecord> {
    let inner = store.read();
    inner
        .by_hash
        .get(hash)
        .and_then(|id| inner.credentials.get(id))
        .cloned()
}

pub(super) fn revoke(
    store: &MemoryStore,
    instance_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Option<CredentialRecord> {
    update(store, instance_id, id, |c| {
        c.revoked_at.get_or_insert(at);
    })
}

pub(super) fn expire(
    store: &MemoryStore,
    instance_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Option<CredentialRecord> {
    update(store, instance_id, id, |c| {
        c.expires_at = Some(c.expires_at.map_or(at, |t| t.min(at)));
    })
}

pub(super) fn set_domains(
    store: &MemoryStore,
    instance_id: &str,
    id: &str,
    domains: &[String],
) -> Option<CredentialRecord> {
    update(store, instance_id, id, |c| c.domains = domains.to_vec())
}

pub(super) fn touch(store: &MemoryStore, instance_id: &str, id: &str, at: DateTime<Utc>) {
    update(store, instance_id, id, |c| {
        c.last_used_at = Some(c.last_used_at.map_or(at, |t| t.max(at)));
    });
}

fn update(
    store: &MemoryStore,
    instance_id: &str,
    id: &str,
    change: impl FnOnce(&mut CredentialRecord),
) -> Option<CredentialRecord> {
    let mut inner = store.write();
    let record = inner
        .credentials
        .get_mut(id)
        .filter(|c| c.instance_id == instance_id)?;
    change(record);
    Some(record.clone())
}
