//! Instances: the record, its epoch, the API key index and the list of all
//! instances. Deleting an instance deletes every key it owns.

use redis::AsyncCommands;

use super::{corrupt, credentials, first_int, millis, scripts, unavailable, RedisStore};
use crate::domain::instance::{CredentialRecord, Instance};
use crate::store::StoreError;

/// One-slot steps (a cluster has no cross-slot transaction), each durable,
/// in an order that leaves nothing usable when cut short: the instance's own
/// keys, then its place in the list (so an operator sees and can delete a
/// half-made instance), then the credential index, and the API key index
/// last, which makes the instance usable.
pub(super) async fn insert(
    store: &RedisStore,
    instance: &Instance,
    first_secret: &CredentialRecord,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(instance).map_err(corrupt)?;
    let key = store.instance_key(&instance.id);
    let mut own = vec![
        redis::Cmd::set(&key, json),
        redis::Cmd::set(store.epoch_key(&instance.id), 1),
    ];
    credentials::add_own(store, &mut own, first_secret)?;
    store.write_durably(&key, own, true).await?;
    let list = store.instances_key();
    store
        .write_durably(
            &list,
            vec![redis::Cmd::zadd(
                &list,
                &instance.id,
                millis(instance.created_at),
            )],
            false,
        )
        .await?;
    credentials::index(store, first_secret).await?;
    let api_key = store.api_key_key(&instance.api_key);
    store
        .write_durably(
            &api_key,
            vec![redis::Cmd::set(&api_key, &instance.id)],
            false,
        )
        .await?;
    Ok(())
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
    // One `MGET` of keys in many slots: a cluster connection splits it by slot.
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
    let key = store.instance_key(&instance.id);
    let keys = [key.clone(), store.epoch_key(&instance.id)];
    let mut script = scripts::eval(scripts::UPDATE_INSTANCE, &keys);
    script.arg(json);
    let done = first_int(&store.write_durably(&key, vec![script], false).await?)?;
    Ok(done == 1)
}

/// The instance's own keys go first, in one transaction: from then on its
/// tokens and credentials are dead. The index entries and its place in the
/// list follow; an index entry left behind by a cut-short delete points at
/// nothing and finds nothing.
pub(super) async fn delete(store: &RedisStore, id: &str) -> Result<bool, StoreError> {
    let Some(instance) = get(store, id).await? else {
        return Ok(false);
    };
    let mut conn = store.conn()?;
    let cred_ids: Vec<String> = conn
        .zrange(store.creds_key(id), 0, -1)
        .await
        .map_err(unavailable)?;
    let key = store.instance_key(id);
    let mut own = vec![
        redis::Cmd::del(&key),
        redis::Cmd::del(store.epoch_key(id)),
        redis::Cmd::del(store.creds_key(id)),
        redis::Cmd::del(store.usage_key(id)),
        redis::Cmd::del(store.audit_key(id)),
    ];
    let mut index = vec![store.api_key_key(&instance.api_key)];
    for cred_id in &cred_ids {
        if let Some(credential) = credentials::get(store, id, cred_id).await? {
            index.push(store.hash_key(&credential.hash));
        }
        own.push(redis::Cmd::del(store.cred_key(id, cred_id)));
    }
    store.write_durably(&key, own, true).await?;
    // One `DEL` of keys in many slots: a cluster connection splits it by slot.
    let _: i64 = conn.del(&index).await.map_err(unavailable)?;
    let _: i64 = conn
        .zrem(store.instances_key(), id)
        .await
        .map_err(unavailable)?;
    Ok(true)
}
