//! What is counted and recorded per instance: rate-limit counters (expiring
//! entries that die with their window), usage counts and the audit log (owned
//! by the instance; writes for an instance that is gone are dropped).

use super::expiring::counter_key;
use super::MemoryStore;
use crate::store::{Step, Usage, UsageSeries, Window};

/// Counts the windows in order and stops after the first one over its limit,
/// as the Redis script does.
pub(super) fn hit(store: &MemoryStore, scope: Option<&str>, windows: &[Window]) -> Vec<u64> {
    let mut expiring = store.expiring();
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
    counts
}

pub(super) fn peek(store: &MemoryStore, scope: Option<&str>, suffixes: &[String]) -> Vec<u64> {
    let expiring = store.expiring();
    suffixes
        .iter()
        .map(|s| {
            expiring
                .get(&counter_key(scope, s))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

pub(super) fn add_usage(
    store: &MemoryStore,
    instance_id: &str,
    increments: &[(String, String, i64)],
) {
    if !store.read().instances.contains_key(instance_id) {
        return;
    }
    let mut usage = store.usage.lock().unwrap_or_else(|e| e.into_inner());
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
    drop(usage);
    add_to_series(store, instance_id, increments);
}

/// Adds the counts to the minute and hour steps at each credential's
/// `last_used_at`, and drops steps past their retention.
fn add_to_series(store: &MemoryStore, instance_id: &str, increments: &[(String, String, i64)]) {
    let mut series = store.usage_series.lock().unwrap_or_else(|e| e.into_inner());
    let mut latest = i64::MIN;
    for (credential, counter, amount) in increments {
        if counter == "last_used_at" {
            continue;
        }
        let Some(at) = last_used_at(increments, credential) else {
            continue;
        };
        latest = latest.max(at);
        for step in Step::ALL {
            *series
                .entry((instance_id.to_owned(), step, step.bucket(at)))
                .or_default()
                .entry(credential.clone())
                .or_default()
                .entry(counter.clone())
                .or_insert(0) += amount;
        }
    }
    if latest != i64::MIN {
        series.retain(|(_, step, start), _| *start + step.retention_seconds() > latest);
    }
}

fn last_used_at(increments: &[(String, String, i64)], credential: &str) -> Option<i64> {
    increments
        .iter()
        .find(|(c, counter, _)| c == credential && counter == "last_used_at")
        .map(|(_, _, at)| *at)
}

pub(super) fn usage_series(
    store: &MemoryStore,
    instance_id: &str,
    step: Step,
    from: i64,
    to: i64,
) -> UsageSeries {
    let series = store.usage_series.lock().unwrap_or_else(|e| e.into_inner());
    let low = (instance_id.to_owned(), step, from);
    let high = (instance_id.to_owned(), step, to);
    if from > to {
        return Vec::new();
    }
    series
        .range(low..=high)
        .map(|((_, _, start), usage)| (*start, usage.clone()))
        .collect()
}

pub(super) fn usage(store: &MemoryStore, instance_id: &str) -> Usage {
    let usage = store.usage.lock().unwrap_or_else(|e| e.into_inner());
    usage.get(instance_id).cloned().unwrap_or_default()
}

pub(super) fn append_audit(store: &MemoryStore, instance_id: &str, entry: &str, keep: usize) {
    if !store.read().instances.contains_key(instance_id) {
        return;
    }
    let mut audit = store.audit.lock().unwrap_or_else(|e| e.into_inner());
    let log = audit.entry(instance_id.to_owned()).or_default();
    log.push_front(entry.to_owned());
    log.truncate(keep);
}

pub(super) fn audit(
    store: &MemoryStore,
    instance_id: &str,
    offset: usize,
    limit: usize,
) -> (Vec<String>, usize) {
    let audit = store.audit.lock().unwrap_or_else(|e| e.into_inner());
    audit.get(instance_id).map_or((Vec::new(), 0), |log| {
        (
            log.iter().skip(offset).take(limit).cloned().collect(),
            log.len(),
        )
    })
}
