//! Process-local caches for the hot paths: instances (by id and by API key),
//! and genuine credentials by keyed hash (experience tokens for the gateway;
//! secrets and domain keys for `/v1/auth` and introspection).
//!
//! A cached instance is never trusted on its own: the gateway's one store call
//! per request returns the instance's current epoch, and a mismatch makes the
//! gateway reload the instance and decide again on fresh data. A refusal based
//! on cached data is likewise re-checked on fresh data before it is answered.
//! So every decision is exact as of the store call; the caches only save the
//! round trips that would fetch unchanged configuration.
//!
//! Cached credentials are used only for what never changes (id, instance,
//! kind, experience); whether one is revoked, expiring or pending, and a
//! domain key's domains, come from the store on every use. `/v1/auth` reads
//! them together with the instance's epoch in one round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::credential::CredentialHash;
use crate::domain::instance::{CredentialRecord, Instance};
use crate::store::{Store, StoreError};

/// Entries kept per cache; past that the cache starts over.
pub const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct CachedInstance {
    pub instance: Arc<Instance>,
    pub epoch: u64,
}

#[derive(Debug, Default)]
pub struct InstanceCache {
    by_id: RwLock<HashMap<String, CachedInstance>>,
    id_by_api_key: RwLock<HashMap<String, String>>,
}

fn bounded_insert<V>(map: &mut HashMap<String, V>, key: String, value: V) {
    if map.len() >= CACHE_CAPACITY && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

impl InstanceCache {
    /// The instance, from the cache unless `fresh`.
    pub async fn by_id(
        &self,
        store: &dyn Store,
        id: &str,
        fresh: bool,
    ) -> Result<Option<CachedInstance>, StoreError> {
        if !fresh {
            if let Some(hit) = self.by_id.read().unwrap_or_else(|e| e.into_inner()).get(id) {
                return Ok(Some(hit.clone()));
            }
        }
        let loaded = store.instance_with_epoch(id).await?;
        let mut by_id = self.by_id.write().unwrap_or_else(|e| e.into_inner());
        match loaded {
            Some((instance, epoch)) => {
                let entry = CachedInstance {
                    instance: Arc::new(instance),
                    epoch,
                };
                bounded_insert(&mut by_id, id.to_owned(), entry.clone());
                Ok(Some(entry))
            }
            None => {
                by_id.remove(id);
                Ok(None)
            }
        }
    }

    /// The instance of an API key, from the cache unless `fresh`. API keys
    /// never change, so only the instance behind one can go stale.
    pub async fn by_api_key(
        &self,
        store: &dyn Store,
        api_key: &str,
        fresh: bool,
    ) -> Result<Option<CachedInstance>, StoreError> {
        let known = if fresh {
            None
        } else {
            self.id_by_api_key
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(api_key)
                .cloned()
        };
        let id = match known {
            Some(id) => id,
            None => match store.instance_id_by_api_key(api_key).await? {
                Some(id) => {
                    let mut map = self
                        .id_by_api_key
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    bounded_insert(&mut map, api_key.to_owned(), id.clone());
                    id
                }
                None => return Ok(None),
            },
        };
        let found = self.by_id(store, &id, fresh).await?;
        if found.is_none() {
            self.id_by_api_key
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(api_key);
        }
        Ok(found)
    }

    /// The current instance of an API key: the cached one if the store's
    /// epoch says it is current (one small read), else read afresh.
    pub async fn current_by_api_key(
        &self,
        store: &dyn Store,
        api_key: &str,
    ) -> Result<Option<Arc<Instance>>, StoreError> {
        if let Some(cached) = self.cached_by_api_key(api_key) {
            if store.epoch(&cached.instance.id).await? == cached.epoch {
                return Ok(Some(cached.instance));
            }
        }
        Ok(self
            .by_api_key(store, api_key, true)
            .await?
            .map(|fresh| fresh.instance))
    }

    /// What the cache holds for an API key, without asking the store; the
    /// caller must check the epoch before trusting it.
    pub fn cached_by_api_key(&self, api_key: &str) -> Option<CachedInstance> {
        let id = self
            .id_by_api_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(api_key)
            .cloned()?;
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn clear(&self) {
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.id_by_api_key
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Credentials by keyed hash (only genuine ones are cached).
#[derive(Debug, Default)]
pub struct CredentialCache {
    by_hash: RwLock<HashMap<String, Arc<CredentialRecord>>>,
}

impl CredentialCache {
    pub fn get(&self, hash: &CredentialHash) -> Option<Arc<CredentialRecord>> {
        self.by_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash.as_str())
            .cloned()
    }

    pub fn insert(&self, record: CredentialRecord) -> Arc<CredentialRecord> {
        let record = Arc::new(record);
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        bounded_insert(&mut map, record.hash.as_str().to_owned(), record.clone());
        record
    }
}
