//! Instances, their API-key index and their epochs. Deleting an instance
//! takes everything it owns with it: credentials, usage counts and audit log.

use super::MemoryStore;
use crate::domain::instance::{CredentialRecord, Instance};

pub(super) fn insert(store: &MemoryStore, instance: &Instance, first_secret: &CredentialRecord) {
    let mut inner = store.write();
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
}

pub(super) fn get(store: &MemoryStore, id: &str) -> Option<Instance> {
    store.read().instances.get(id).cloned()
}

pub(super) fn epoch(store: &MemoryStore, id: &str) -> u64 {
    store.read().epochs.get(id).copied().unwrap_or(0)
}

pub(super) fn with_epoch(store: &MemoryStore, id: &str) -> Option<(Instance, u64)> {
    let inner = store.read();
    inner
        .instances
        .get(id)
        .map(|i| (i.clone(), inner.epochs.get(id).copied().unwrap_or(0)))
}

pub(super) fn id_by_api_key(store: &MemoryStore, api_key: &str) -> Option<String> {
    store.read().by_api_key.get(api_key).cloned()
}

pub(super) fn list(store: &MemoryStore) -> Vec<Instance> {
    let mut all: Vec<Instance> = store.read().instances.values().cloned().collect();
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    all
}

pub(super) fn update(store: &MemoryStore, instance: &Instance) -> bool {
    let mut inner = store.write();
    match inner.instances.get_mut(&instance.id) {
        Some(existing) => {
            *existing = instance.clone();
            *inner.epochs.entry(instance.id.clone()).or_insert(0) += 1;
            true
        }
        None => false,
    }
}

pub(super) fn delete(store: &MemoryStore, id: &str) -> bool {
    let mut inner = store.write();
    let Some(instance) = inner.instances.remove(id) else {
        return false;
    };
    inner.epochs.remove(id);
    inner.by_api_key.remove(&instance.api_key);
    store
        .usage
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
    store
        .audit
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
    true
}
