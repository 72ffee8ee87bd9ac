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

type Pending = HashMap<String, HashMap<(String, &'static str), i64>>;

#[derive(Debug, Default)]
pub struct UsageBuffer {
    pending: Mutex<Pending>,
}

impl UsageBuffer {
    pub fn count(&self, instance_id: &str, credential_id: &str, counter: &'static str, now: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let of_instance = pending.entry(instance_id.to_owned()).or_default();
        *of_instance
            .entry((credential_id.to_owned(), counter))
            .or_insert(0) += 1;
        let last = of_instance
            .entry((credential_id.to_owned(), LAST_USED_AT))
            .or_insert(0);
        *last = (*last).max(now);
    }

    fn put_back(&self, instance_id: String, counts: HashMap<(String, &'static str), i64>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let of_instance = pending.entry(instance_id).or_default();
        for (key, n) in counts {
            let slot = of_instance.entry(key.clone()).or_insert(0);
            if key.1 == LAST_USED_AT {
                *slot = (*slot).max(n);
            } else {
                *slot += n;
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
                .map(|((cred, counter), n)| (cred.clone(), (*counter).to_owned(), *n))
                .collect();
            if let Err(e) = store.add_usage(&instance_id, &increments).await {
                self.put_back(instance_id, counts);
                failed = Some(e);
                continue;
            }
            // A lost last_used_at is only late; counts are never added twice.
            for ((credential_id, counter), at) in &counts {
                if *counter != LAST_USED_AT {
                    continue;
                }
                if let Some(at) = chrono::DateTime::from_timestamp(*at, 0) {
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
