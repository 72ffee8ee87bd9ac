//! What is counted and recorded per instance: rate-limit counters (keys that
//! die with their window), usage counts and the audit log (owned by the
//! instance; the scripts that write them do nothing once it is gone).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{unavailable, RedisStore};
use crate::store::{StoreError, Usage, Window};

pub(super) async fn hit(
    store: &RedisStore,
    scope: Option<&str>,
    windows: &[Window],
) -> Result<Vec<u64>, StoreError> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = store.scripts.hit.prepare_invoke();
    for window in windows {
        invocation
            .key(store.counter_key(scope, &window.suffix))
            .arg(window.limit)
            .arg(window.ttl_ms.max(1));
    }
    let mut conn = store.conn()?;
    invocation
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)
}

pub(super) async fn peek(
    store: &RedisStore,
    scope: Option<&str>,
    suffixes: &[String],
) -> Result<Vec<u64>, StoreError> {
    if suffixes.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = suffixes
        .iter()
        .map(|s| store.counter_key(scope, s))
        .collect();
    let mut conn = store.conn()?;
    let values: Vec<Option<u64>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(values.into_iter().map(Option::unwrap_or_default).collect())
}

pub(super) async fn add_usage(
    store: &RedisStore,
    instance_id: &str,
    increments: &[(String, String, i64)],
) -> Result<(), StoreError> {
    if increments.is_empty() {
        return Ok(());
    }
    let mut invocation = store.scripts.add_usage.prepare_invoke();
    invocation
        .key(store.usage_key(instance_id))
        .key(store.instance_key(instance_id));
    for (credential, counter, amount) in increments {
        invocation
            .arg(format!("{credential}|{counter}"))
            .arg(*amount);
    }
    let mut conn = store.conn()?;
    let _: i64 = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn usage(store: &RedisStore, instance_id: &str) -> Result<Usage, StoreError> {
    let mut conn = store.conn()?;
    let fields: HashMap<String, i64> = conn
        .hgetall(store.usage_key(instance_id))
        .await
        .map_err(unavailable)?;
    let mut usage = Usage::new();
    for (field, value) in fields {
        if let Some((credential, counter)) = field.split_once('|') {
            usage
                .entry(credential.to_owned())
                .or_default()
                .insert(counter.to_owned(), value);
        }
    }
    Ok(usage)
}

pub(super) async fn append_audit(
    store: &RedisStore,
    instance_id: &str,
    entry: &str,
    keep: usize,
) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: i64 = store
        .scripts
        .append_audit
        .key(store.audit_key(instance_id))
        .key(store.instance_key(instance_id))
        .arg(entry)
        .arg(keep.max(1))
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn audit(
    store: &RedisStore,
    instance_id: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<String>, usize), StoreError> {
    if limit == 0 {
        return Ok((Vec::new(), 0));
    }
    let key = store.audit_key(instance_id);
    let mut conn = store.conn()?;
    let (entries, total): (Vec<String>, usize) = redis::pipe()
        .lrange(&key, offset as isize, (offset + limit - 1) as isize)
        .llen(&key)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok((entries, total))
}
