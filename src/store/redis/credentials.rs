//! Credentials: one hash each, holding the record as created (`record`) and
//! the mutable fields, each updated on its own by `scripts/update_field.lua`;
//! plus the per-instance list and the index by credential hash.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::keys::{FIELD_DOMAINS, FIELD_EXPIRES, FIELD_LAST_USED, FIELD_RECORD, FIELD_REVOKED};
use super::{corrupt, first_int, from_millis, millis, scripts, unavailable, RedisStore};
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::CredentialRecord;
use crate::store::StoreError;

/// Adds to `commands` the writes that create `credential` in its
/// instance's slot: its hash and its place in the instance's list.
pub(super) fn add_own(
    store: &RedisStore,
    commands: &mut Vec<redis::Cmd>,
    credential: &CredentialRecord,
) -> Result<(), StoreError> {
    let record = serde_json::to_string(credential).map_err(corrupt)?;
    commands.push(redis::Cmd::hset(
        store.cred_key(&credential.instance_id, &credential.id),
        FIELD_RECORD,
        record,
    ));
    commands.push(redis::Cmd::zadd(
        store.creds_key(&credential.instance_id),
        &credential.id,
        millis(credential.created_at),
    ));
    Ok(())
}

/// Writes the index entry that finds `credential` by its hash (a slot of
/// its own): the last step of creating a credential, the one that makes it
/// usable.
pub(super) async fn index(
    store: &RedisStore,
    credential: &CredentialRecord,
) -> Result<(), StoreError> {
    let key = store.hash_key(&credential.hash);
    let location = format!("{}/{}", credential.instance_id, credential.id);
    store
        .write_durably(&key, vec![redis::Cmd::set(&key, location)], false)
        .await?;
    Ok(())
}

fn parse(fields: HashMap<String, String>) -> Result<Option<CredentialRecord>, StoreError> {
    let Some(record) = fields.get(FIELD_RECORD) else {
        return Ok(None);
    };
    let mut credential: CredentialRecord = serde_json::from_str(record).map_err(corrupt)?;
    if let Some(raw) = fields.get(FIELD_REVOKED) {
        credential.revoked_at = Some(from_millis(raw)?);
    }
    if let Some(raw) = fields.get(FIELD_EXPIRES) {
        credential.expires_at = Some(from_millis(raw)?);
    }
    if let Some(raw) = fields.get(FIELD_LAST_USED) {
        credential.last_used_at = Some(from_millis(raw)?);
    }
    if let Some(raw) = fields.get(FIELD_DOMAINS) {
        credential.domains = serde_json::from_str(raw).map_err(corrupt)?;
    }
    Ok(Some(credential))
}

async fn update_field(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
    field: &str,
    value: String,
    mode: &str,
) -> Result<Option<CredentialRecord>, StoreError> {
    let key = store.cred_key(instance_id, id);
    let mut script = scripts::eval(scripts::UPDATE_FIELD, std::slice::from_ref(&key));
    script
        .arg(field)
        .arg(value)
        .arg(mode)
        .arg(store.revocations_channel())
        .arg(instance_id);
    let existed = first_int(&store.write_durably(&key, vec![script], false).await?)?;
    if existed == 0 {
        return Ok(None);
    }
    get(store, instance_id, id).await
}

pub(super) async fn insert(
    store: &RedisStore,
    credential: &CredentialRecord,
) -> Result<(), StoreError> {
    let mut own = Vec::new();
    add_own(store, &mut own, credential)?;
    let key = store.cred_key(&credential.instance_id, &credential.id);
    store.write_durably(&key, own, true).await?;
    index(store, credential).await
}

pub(super) async fn get(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
) -> Result<Option<CredentialRecord>, StoreError> {
    let mut conn = store.conn()?;
    let fields: HashMap<String, String> = conn
        .hgetall(store.cred_key(instance_id, id))
        .await
        .map_err(unavailable)?;
    parse(fields)
}

/// One round trip: both keys carry the instance's hash tag.
pub(super) async fn with_epoch(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
) -> Result<(Option<CredentialRecord>, u64), StoreError> {
    let mut conn = store.conn()?;
    let (fields, epoch): (HashMap<String, String>, Option<u64>) = redis::pipe()
        .hgetall(store.cred_key(instance_id, id))
        .get(store.epoch_key(instance_id))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok((parse(fields)?, epoch.unwrap_or(0)))
}

pub(super) async fn list(
    store: &RedisStore,
    instance_id: &str,
    kind: CredentialKind,
) -> Result<Vec<CredentialRecord>, StoreError> {
    let mut conn = store.conn()?;
    let ids: Vec<String> = conn
        .zrange(store.creds_key(instance_id), 0, -1)
        .await
        .map_err(unavailable)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(store.cred_key(instance_id, id));
    }
    let all: Vec<HashMap<String, String>> =
        pipe.query_async(&mut conn).await.map_err(unavailable)?;
    let mut found = Vec::new();
    for fields in all {
        if let Some(credential) = parse(fields)? {
            if credential.kind == kind {
                found.push(credential);
            }
        }
    }
    Ok(found)
}

pub(super) async fn by_hash(
    store: &RedisStore,
    hash: &CredentialHash,
) -> Result<Option<CredentialRecord>, StoreError> {
    let mut conn = store.conn()?;
    let location: Option<String> = conn.get(store.hash_key(hash)).await.map_err(unavailable)?;
    let Some(location) = location else {
        return Ok(None);
    };
    let (instance_id, id) = location
        .split_once('/')
        .ok_or_else(|| corrupt("credential index entry without a slash"))?;
    get(store, instance_id, id).await
}

pub(super) async fn revoke(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<CredentialRecord>, StoreError> {
    update_field(
        store,
        instance_id,
        id,
        FIELD_REVOKED,
        millis(at).to_string(),
        "setnx",
    )
    .await
}

pub(super) async fn expire(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<CredentialRecord>, StoreError> {
    update_field(
        store,
        instance_id,
        id,
        FIELD_EXPIRES,
        millis(at).to_string(),
        "min",
    )
    .await
}

pub(super) async fn set_domains(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
    domains: &[String],
) -> Result<Option<CredentialRecord>, StoreError> {
    let json = serde_json::to_string(domains).map_err(corrupt)?;
    update_field(store, instance_id, id, FIELD_DOMAINS, json, "set").await
}

pub(super) async fn touch(
    store: &RedisStore,
    instance_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: i64 = store
        .scripts
        .update_field
        .key(store.cred_key(instance_id, id))
        .arg(FIELD_LAST_USED)
        .arg(millis(at).to_string())
        .arg("max")
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}
