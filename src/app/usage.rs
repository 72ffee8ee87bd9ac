//! Usage counters per credential (auth ok / failed, product requests, rate
//! limited, last use), gathered in memory and written to the store once a
//! second in one call per instance (plus one per used credential for its
//! `last_used_at`), so that counting adds no store round trip to a request. A
//! crash loses at most the last second of counts; the admin routes that show
//! counters or `last_used_at` flush first.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Store, StoreError};

pub const AUTH_OK: &str = "auth_ok";
pub const AUTH_FAILED: &str = "auth_failed";
pub const REQUESTS: &str = "requests";
pub const RATE_LIMITED: &str = "rate_limited";
/// Unix seconds; kept as a maximum, not a sum.
pub const LAST_USED_AT: &str = "last_used_at";

/// instance id → credential id → counter → amount.
type Counts = HashMap<String, HashMap<&'static str, i64>>;
type Pending = HashMap<String, Counts>;

#[derive(Debug, Default)]
pub struct UsageBuffer {
    pending: Mutex<Pending>,
}

/// Adds `value` to a counter (`last_used_at` keeps the maximum instead).
fn add(counters: &mut HashMap<&'static str, i64>, name: &'static str, value: i64) {
    let slot = counters.entry(name).or_insert(0);
    if name == LAST_USED_AT {
        *slot = (*slot).max(value);
    } else {
        *slot += value;
    }
}

impl UsageBuffer {
    /// Called on every request: allocates only the first time an instance or
    /// credential shows up in a flush interval.
    pub fn count(&self, instance_id: &str, credential_id: &str, counter: &'static str, now: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.contains_key(instance_id) {
            pending.insert(instance_id.to_owned(), HashMap::new());
        }
        let Some(of_instance) = pending.get_mut(instance_id) else {
            return;
        };
        if !of_instance.contains_key(credential_id) {
            of_instance.insert(credential_id.to_owned(), HashMap::new());
        }
        if let Some(counters) = of_instance.get_mut(credential_id) {
            add(counters, counter, 1);
            add(counters, LAST_USED_AT, now);
        }
    }

    fn put_back(&self, instance_id: String, counts: Counts) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let of_instance = pending.entry(instance_id).or_default();
        for (credential_id, counters) in counts {
            let slots = of_instance.entry(credential_id).or_default();
            for (name, value) in counters {
                add(slots, name, value);
            }
        }
    }

    /// Writes everything gathered so far; on failure the counts are put back.
    pub async fn flush(&self, store: &dyn Store) -> Result<(), StoreError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut failed: Option<StoreError> = None;
        for (instance_id, counts) in taken {
            let increments: Vec<(String, String, i64)> = counts
                .iter()
                .flat_map(|(cred, counters)| {
                    counters
                        .iter()
                        .map(|(counter, n)| (cred.clone(), (*counter).to_owned(), *n))
                })
                .collect();
            if let Err(e) = store.add_usage(&instance_id, &increments).await {
                self.put_back(instance_id, counts);
                failed = Some(e);
                continue;
            }
            // A lost last_used_at is only late; counts are never added twice.
            for (credential_id, counters) in &counts {
                let Some(&at) = counters.get(LAST_USED_AT) else {
                    continue;
                };
                if let Some(at) = chrono::DateTime::from_timestamp(at, 0) {
                    if let Err(e) = store
                        .touch_credential(&instance_id, credential_id, at)
                        .await
                    {
                        failed = Some(e);
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
