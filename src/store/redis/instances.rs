//! Instances: the record, its epoch, the API key index and the list of all
//! instances. Deleting an instance deletes every key it owns.

use redis::AsyncCommands;

use super::{corrupt, credentials, millis, unavailable, RedisStore};
use crate::domain::instance::{CredentialRecord, Instance};
use crate::store::StoreError;

pub(super) async fn insert(
    store: &RedisStore,
    instance: &Instance,
    first_secret: &CredentialRecord,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(instance).map_err(corrupt)?;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .set(store.instance_key(&instance.id), json)
        .ignore()
        .set(store.api_key_key(&instance.api_key), &instance.id)
        .ignore()
        .set(store.epoch_key(&instance.id), 1)
        .ignore()
        .zadd(
            store.instances_key(),
            &instance.id,
            millis(instance.created_at),
        )
        .ignore();
    credentials::add_to(store, &mut pipe, first_secret)?;
    let mut conn = store.conn()?;
    pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
}

pub(super) async fn get(store: &RedisStore, id: &str) -> Result<Option<Instance>, StoreError> {
    let mut conn = store.conn()?;
    let raw: Option<String> = conn
        .get(store.instance_key(id))
        .await
        .map_err(unavailable)?;
    raw.map(|json| parse(id, &json)).transpose()
}

fn parse(id: &str, json: &str) -> Result<Instance, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(format!("the record of instance {id}: {e}")))
}

pub(super) async fn epoch(store: &RedisStore, id: &str) -> Result<u64, StoreError> {
    let mut conn = store.conn()?;
    let epoch: Option<u64> = conn.get(store.epoch_key(id)).await.map_err(unavailable)?;
    Ok(epoch.unwrap_or(0))
}

pub(super) async fn with_epoch(
    store: &RedisStore,
    id: &str,
) -> Result<Option<(Instance, u64)>, StoreError> {
    let mut conn = store.conn()?;
    let (raw, epoch): (Option<String>, Option<u64>) = redis::cmd("MGET")
        .arg(store.instance_key(id))
        .arg(store.epoch_key(id))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    match raw {
        Some(json) => {
            let instance = parse(id, &json)?;
            Ok(Some((instance, epoch.unwrap_or(0))))
        }
        None => Ok(None),
    }
}

pub(super) async fn id_by_api_key(
    store: &RedisStore,
    api_key: &str,
) -> Result<Option<String>, StoreError> {
    let mut conn = store.conn()?;
    conn.get(store.api_key_key(api_key))
        .await
        .map_err(unavailable)
}

pub(super) async fn list(store: &RedisStore) -> Result<Vec<Instance>, StoreError> {
    let mut conn = store.conn()?;
    let ids: Vec<String> = conn
        .zrange(store.instances_key(), 0, -1)
        .await
        .map_err(unavailable)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| store.instance_key(id)).collect();
    let raws: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    // One unreadable record must not hide every other instance (the admin
    // list, the CORS origin index): it is skipped, and logged once. Reading
    // that instance by id still fails closed.
    let mut instances = Vec::with_capacity(ids.len());
    for (id, raw) in ids.iter().zip(raws) {
        let Some(json) = raw else { continue };
        match serde_json::from_str(&json) {
            Ok(instance) => instances.push(instance),
            Err(e) => skipped(store, id, &e),
        }
    }
    Ok(instances)
}

fn skipped(store: &RedisStore, id: &str, error: &serde_json::Error) {
    let first = store
        .skipped_instances
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_owned());
    if first {
        tracing::error!(
            instance = %id,
            error = %error,
            "stored data is corrupt: the instance record is not valid JSON; lists skip it"
        );
    }
}

pub(super) async fn update(store: &RedisStore, instance: &Instance) -> Result<bool, StoreError> {
    let json = serde_json::to_string(instance).map_err(corrupt)?;
    let mut conn = store.conn()?;
    let done: i64 = store
        .scripts
        .update_instance
        .key(store.instance_key(&instance.id))
        .key(store.epoch_key(&instance.id))
        .arg(json)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(done == 1)
}

pub(super) async fn delete(store: &RedisStore, id: &str) -> Result<bool, StoreError> {
    let Some(instance) = get(store, id).await? else {
        return Ok(false);
    };
    let mut conn = store.conn()?;
    let cred_ids: Vec<String> = conn
        .zrange(store.creds_key(id), 0, -1)
        .await
        .map_err(unavailable)?;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .del(store.instance_key(id))
        .ignore()
        .del(store.epoch_key(id))
        .ignore()
        .del(store.api_key_key(&instance.api_key))
        .ignore()
        .zrem(store.instances_key(), id)
        .ignore()
        .del(store.creds_key(id))
        .ignore()
        .del(store.usage_key(id))
        .ignore()
        .del(store.audit_key(id))
        .ignore();
    for cred_id in &cred_ids {
        if let Some(credential) = credentials::get(store, id, cred_id).await? {
            pipe.del(store.hash_key(&credential.hash)).ignore();
        }
        pipe.del(store.cred_key(id, cred_id)).ignore();
    }
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(true)
}
