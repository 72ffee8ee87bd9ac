//! Short-lived entries (revocations, refresh successors, rate-limit counters)
//! and the names they are kept under. An entry past its deadline reads as
//! absent at once; it is dropped from memory by the next periodic sweep.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::Revocation;

/// Short-lived entries (revocations, refresh successors) with their deadline.
#[derive(Debug, Default)]
pub(super) struct Expiring {
    entries: HashMap<String, (String, Instant)>,
    writes_since_sweep: usize,
}

impl Expiring {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .get(key)
            .filter(|(_, deadline)| *deadline > Instant::now())
            .map(|(v, _)| v.as_str())
    }

    pub(super) fn put(&mut self, key: String, value: String, ttl_seconds: i64) {
        self.put_ms(key, value, ttl_seconds.max(1).saturating_mul(1000));
    }

    /// Changes a live entry's value and keeps its deadline.
    pub(super) fn replace(&mut self, key: &str, value: String) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.0 = value;
        }
    }

    pub(super) fn put_ms(&mut self, key: String, value: String, ttl_ms: i64) {
        let ttl = Duration::from_millis(u64::try_from(ttl_ms.max(1)).unwrap_or(1));
        let deadline = Instant::now() + ttl;
        let kept = self
            .entries
            .get(&key)
            .map(|(_, d)| *d)
            .filter(|d| *d > deadline);
        self.entries.insert(key, (value, kept.unwrap_or(deadline)));
        // Sweep expired entries now and then, so memory stays bounded by what
        // is alive.
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 {
            let now = Instant::now();
            self.entries.retain(|_, (_, d)| *d > now);
            self.writes_since_sweep = 0;
        }
    }
}

pub(super) fn counter_key(scope: Option<&str>, suffix: &str) -> String {
    format!("{}/rl/{suffix}", scope.unwrap_or("-"))
}

pub(super) fn revocation_key(instance_id: &str, revocation: &Revocation<'_>) -> String {
    match revocation {
        Revocation::Token { jti } => format!("{instance_id}/jti/{jti}"),
        Revocation::Session { sid } => format!("{instance_id}/sid/{sid}"),
        Revocation::Credential { id, .. } => format!("{instance_id}/cred/{id}"),
        Revocation::Instance { .. } => format!("{instance_id}/all"),
    }
}
