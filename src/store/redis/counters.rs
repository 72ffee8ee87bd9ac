//! What is counted and recorded per instance: rate-limit counters (keys that
//! die with their window), usage counts and the audit log (owned by the
//! instance; the scripts that write them do nothing once it is gone).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{unavailable, RedisStore};
use crate::store::{Step, StoreError, Usage, UsageSeries, Window};

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
    // The series steps of each credential's last use: KEYS[k] its minute and
    // KEYS[k + 1] its hour (see scripts/add_usage.lua).
    let mut step_keys: HashMap<&str, usize> = HashMap::new();
    let mut next_key = 3;
    for (credential, counter, at) in increments {
        if counter == LAST_USED_AT && !step_keys.contains_key(credential.as_str()) {
            for step in Step::ALL {
                invocation.key(store.usage_series_key(instance_id, step.name(), step.bucket(*at)));
            }
            step_keys.insert(credential, next_key);
            next_key += Step::ALL.len();
        }
    }
    invocation
        .arg(Step::Minute.retention_seconds() + Step::Minute.seconds())
        .arg(Step::Hour.retention_seconds() + Step::Hour.seconds());
    for (credential, counter, amount) in increments {
        let index = match counter.as_str() {
            LAST_USED_AT => 0,
            _ => step_keys.get(credential.as_str()).copied().unwrap_or(0),
        };
        invocation
            .arg(format!("{credential}|{counter}"))
            .arg(*amount)
            .arg(index);
    }
    let mut conn = store.conn()?;
    let _: i64 = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

const LAST_USED_AT: &str = "last_used_at";

fn usage_of(fields: HashMap<String, i64>) -> Usage {
    let mut usage = Usage::new();
    for (field, value) in fields {
        if let Some((credential, counter)) = field.split_once('|') {
            usage
                .entry(credential.to_owned())
                .or_default()
                .insert(counter.to_owned(), value);
        }
    }
    usage
}

/// One pipelined `HGETALL` per step of the range: at most 2881 minutes or
/// 721 hours, which the handler's range check guarantees.
pub(super) async fn usage_series(
    store: &RedisStore,
    instance_id: &str,
    step: Step,
    from: i64,
    to: i64,
) -> Result<UsageSeries, StoreError> {
    if from > to {
        return Ok(Vec::new());
    }
    let starts: Vec<i64> = (from..=to).step_by(step.seconds() as usize).collect();
    let mut pipe = redis::pipe();
    for start in &starts {
        pipe.hgetall(store.usage_series_key(instance_id, step.name(), *start));
    }
    let mut conn = store.conn()?;
    let steps: Vec<HashMap<String, i64>> =
        pipe.query_async(&mut conn).await.map_err(unavailable)?;
    Ok(starts
        .into_iter()
        .zip(steps)
        .filter(|(_, fields)| !fields.is_empty())
        .map(|(start, fields)| (start, usage_of(fields)))
        .collect())
}

pub(super) async fn usage(store: &RedisStore, instance_id: &str) -> Result<Usage, StoreError> {
    let mut conn = store.conn()?;
    let fields: HashMap<String, i64> = conn
        .hgetall(store.usage_key(instance_id))
        .await
        .map_err(unavailable)?;
    Ok(usage_of(fields))
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
    // LRANGE takes signed indexes, where a negative one counts from the end:
    // an offset past them must not wrap into one. It is past any list, too.
    let Ok(start) = isize::try_from(offset) else {
        let total: usize = conn.llen(&key).await.map_err(unavailable)?;
        return Ok((Vec::new(), total));
    };
    let end = start.saturating_add(isize::try_from(limit - 1).unwrap_or(isize::MAX));
    let (entries, total): (Vec<String>, usize) = redis::pipe()
        .lrange(&key, start, end)
        .llen(&key)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok((entries, total))
}
