//! Waiting until every live process has applied a change.
//!
//! Product requests answer from each process's local view (see
//! `hot_path.rs`), so a revocation or a configuration change made through
//! one process must reach the others before its answer says it is done.
//! After writing, the process announces the change on the feed with its id
//! and a nonce; every process following the feed applies the announcement
//! (its view forgets what it held about the instance) and acknowledges. The
//! announcer reads which processes are live (the heartbeat registry, see
//! `store/redis/heartbeat.rs`) and waits until each of them has
//! acknowledged, or [`ACK_BOUND`] has passed, and says how many did.
//!
//! A process missing from the answer is either dead or cut from Redis: in
//! both cases its view is no longer trusted within a second (it stops
//! hearing its own pings), and it then reads the store for every check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::AppState;

/// The longest an answer waits for acknowledgements.
pub const ACK_BOUND: Duration = Duration::from_millis(100);

/// How far a change reached before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    /// Processes live when the change was written (this one included).
    pub processes: usize,
    /// Of those, how many acknowledged within the bound.
    pub acknowledged: usize,
}

/// The acknowledgements this process waits for, by nonce.
#[derive(Debug)]
pub struct Acks {
    process_id: String,
    next: AtomicU64,
    pending: Mutex<HashMap<String, Arc<Pending>>>,
}

#[derive(Debug, Default)]
struct Pending {
    tally: Mutex<Tally>,
    notify: Notify,
}

/// Who was expected and who acknowledged; acknowledgements may arrive
/// before the expected set is known.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    expected: Option<HashSet<String>>,
    acked: HashSet<String>,
}

impl Tally {
    pub fn expect(&mut self, processes: impl IntoIterator<Item = String>) {
        self.expected = Some(processes.into_iter().collect());
    }

    pub fn ack(&mut self, process: &str) {
        self.acked.insert(process.to_owned());
    }

    /// How far it got so far.
    pub fn propagation(&self) -> Propagation {
        let expected = self.expected.as_ref();
        Propagation {
            processes: expected.map_or(0, HashSet::len),
            acknowledged: expected.map_or(0, |e| e.intersection(&self.acked).count()),
        }
    }

    /// The outcome once every expected process acknowledged or the
    /// deadline passed; `None` while it is worth waiting.
    pub fn settled(&self, now: Instant, deadline: Instant) -> Option<Propagation> {
        let p = self.propagation();
        let complete = self.expected.is_some() && p.acknowledged == p.processes;
        (complete || now >= deadline).then_some(p)
    }
}

impl Default for Acks {
    fn default() -> Self {
        Acks {
            process_id: format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0),
            next: AtomicU64::new(0),
            pending: Mutex::default(),
        }
    }
}

impl Acks {
    /// This process's id in the heartbeat registry.
    pub fn process_id(&self) -> &str {
        &self.process_id
    }

    /// From the feed: `process` applied our announcement `nonce`.
    pub fn acknowledged(&self, nonce: &str, process: &str) {
        let pending = self.lock().get(nonce).cloned();
        if let Some(pending) = pending {
            pending
                .tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ack(process);
            pending.notify.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> (String, Arc<Pending>) {
        let nonce = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let pending = Arc::new(Pending::default());
        self.lock().insert(nonce.clone(), pending.clone());
        (nonce, pending)
    }

    fn close(&self, nonce: &str) {
        self.lock().remove(nonce);
    }
}

impl AppState {
    /// Announces that the instance's state changed and waits (at most
    /// [`ACK_BOUND`]) until every live process has applied it. Call it after
    /// the change is written. A store without a feed serves one process,
    /// which read the change from the store itself.
    pub async fn propagate(&self, instance_id: &str) -> Propagation {
        if !self.store.has_revocation_feed() {
            return Propagation {
                processes: 1,
                acknowledged: 1,
            };
        }
        let deadline = Instant::now() + ACK_BOUND;
        let (nonce, pending) = self.acks.open();
        let origin = self.acks.process_id();
        let live = self.store.live_processes().await;
        let announced = self.store.announce(instance_id, origin, &nonce).await;
        match (live, announced) {
            (Ok(live), Ok(())) => pending
                .tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .expect(live),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, instance = %instance_id, "a change was written but not announced; other processes read it within a second");
            }
        }
        let outcome = loop {
            let settled = pending
                .tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .settled(Instant::now(), deadline);
            if let Some(p) = settled {
                break p;
            }
            let _ = tokio::time::timeout_at(deadline.into(), pending.notify.notified()).await;
        };
        self.acks.close(&nonce);
        if outcome.acknowledged < outcome.processes {
            tracing::warn!(
                instance = %instance_id,
                processes = outcome.processes,
                acknowledged = outcome.acknowledged,
                "not every live process acknowledged a change in time"
            );
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn settles_when_every_live_process_acknowledged() {
        let start = Instant::now();
        let deadline = start + ACK_BOUND;
        let mut tally = Tally::default();
        // An acknowledgement may come before the registry is read.
        tally.ack("a");
        assert_eq!(tally.settled(start, deadline), None, "nobody expected yet");
        tally.expect(ids(&["a", "b"]));
        assert_eq!(
            tally.settled(start, deadline),
            None,
            "b has not acknowledged"
        );
        tally.ack("b");
        assert_eq!(
            tally.settled(start + Duration::from_millis(1), deadline),
            Some(Propagation {
                processes: 2,
                acknowledged: 2
            })
        );
    }

    #[test]
    fn settles_at_the_bound_saying_how_many_acknowledged() {
        let start = Instant::now();
        let deadline = start + ACK_BOUND;
        let mut tally = Tally::default();
        tally.expect(ids(&["a", "b", "c"]));
        tally.ack("a");
        // A process that is not in the registry does not count.
        tally.ack("stranger");
        assert_eq!(
            tally.settled(start + Duration::from_millis(99), deadline),
            None
        );
        assert_eq!(
            tally.settled(deadline, deadline),
            Some(Propagation {
                processes: 3,
                acknowledged: 1
            })
        );
    }

    #[test]
    fn a_registry_that_could_not_be_read_waits_for_the_bound() {
        let start = Instant::now();
        let deadline = start + ACK_BOUND;
        let mut tally = Tally::default();
        tally.ack("a");
        assert_eq!(tally.settled(start, deadline), None);
        assert_eq!(
            tally.settled(deadline, deadline),
            Some(Propagation {
                processes: 0,
                acknowledged: 0
            })
        );
    }

    #[test]
    fn acknowledgements_reach_the_waiting_nonce_only() {
        let acks = Acks::default();
        let (first, pending) = acks.open();
        let (second, other) = acks.open();
        assert_ne!(first, second);
        acks.acknowledged(&first, "a");
        acks.acknowledged("unknown", "a");
        pending.tally.lock().unwrap().expect(ids(&["a"]));
        other.tally.lock().unwrap().expect(ids(&["a"]));
        assert_eq!(pending.tally.lock().unwrap().propagation().acknowledged, 1);
        assert_eq!(other.tally.lock().unwrap().propagation().acknowledged, 0);
        acks.close(&first);
        assert!(acks.lock().get(&first).is_none());
    }
}
