//! Quota leases for the product rate limits (SPEC §6), on stores shared by
//! several processes.
//!
//! A window's counter in the store counts the units *granted* to every
//! process, not the requests answered. A process takes a lease of units in
//! one atomic script (`min(ask, limit − granted)`, see
//! `store/redis/scripts/lease.lua`), spends it locally, and asks again when
//! it runs out. So the total granted, and so the total allowed, never exceeds
//! the limit; units a process has not spent when the window ends are lost.
//!
//! Sizing, after Doorman's and Envoy's quota leases, kept simple because the
//! store is one round trip away:
//! - the process asks for what it would spend in [`LEASE_TARGET_MS`] at the
//!   rate it spent its last lease, at most twice that lease (a slow start:
//!   the first lease of a window is one unit) and [`MAX_ASK`];
//! - the store grants at most `1/share` of what is left (`LEASE_SHARE`), so
//!   leases shrink as the budget runs out and fall to one unit near the
//!   limit; what other processes may be holding stays small next to what is
//!   left;
//! - windows whose limit is under [`LEASE_FROM_LIMIT`] lease one unit at a
//!   time.
//!
//! Once the store has granted everything, the window is *exhausted* here and
//! further requests are refused locally: a counter never goes down within
//! its window. A lease is tied to the limit it was granted under; a changed
//! limit asks the store again.
//!
//! Time is passed in: `mono_ms` (a monotonic clock, for rates) and `wall_ms`
//! (the injected clock, for when windows end).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::store::{Grant, Window};

/// A lease should last about this long at the rate the last one was spent.
pub const LEASE_TARGET_MS: u64 = 50;

/// No lease is larger than this.
pub const MAX_ASK: u64 = 4096;

/// Windows with a smaller limit take one unit at a time: they cost at most
/// `limit` round trips per window anyway (past it, the window is exhausted
/// and refused locally), and one-unit leases keep every allowed request's
/// round trip, so such a window sees even writes to the store that no
/// process announced (a restore, a hand edit) on its very next request.
pub const LEASE_FROM_LIMIT: u64 = 1_000;

/// The store grants at most this fraction (1/n) of what is left in a window.
pub const LEASE_SHARE: u64 = 8;

/// At most this many windows are remembered; past it, ended windows go
/// first, then everything (units held are lost, never granted twice).
const CAPACITY: usize = 65_536;

#[derive(Debug)]
pub struct Leases {
    started: Instant,
    table: Mutex<HashMap<String, Lease>>,
}

impl Default for Leases {
    fn default() -> Self {
        Leases {
            started: Instant::now(),
            table: Mutex::default(),
        }
    }
}

#[derive(Debug, Clone)]
struct Lease {
    /// The limit the units were granted under.
    limit: u64,
    /// The store's counter after the last grant: units granted to every
    /// process so far.
    used: u64,
    /// Units of ours not spent yet.
    left: u64,
    last_grant: u64,
    granted_at_ms: u64,
    /// When the window ends (unix ms), for pruning.
    ends_at_ms: i64,
}

/// One window's part of a request, decided locally or still to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A unit was spent; the window's count as the rate decision reads it.
    Counted(u64),
    /// The window is exhausted: the request is refused by it.
    Refused,
    /// Ask the store for this many units.
    Ask(u64),
}

/// Whether every slot was decided without the store.
pub fn decided(slots: &[Slot]) -> bool {
    slots.contains(&Slot::Refused) || slots.iter().all(|s| matches!(s, Slot::Counted(_)))
}

/// The counts the rate decision reads (`limits::rate_decision`): a count
/// over the limit where a window refused, `used − left` (everything granted
/// minus what this process still holds) where a unit was spent.
pub fn counts(windows: &[Window], slots: &[Slot]) -> Vec<u64> {
    let mut out = Vec::with_capacity(slots.len());
    for (window, slot) in windows.iter().zip(slots) {
        match slot {
            Slot::Counted(n) => out.push(*n),
            Slot::Ask(_) => out.push(0),
            Slot::Refused => {
                out.push(window.limit.saturating_add(1));
                break;
            }
        }
    }
    out
}

fn key(instance_id: &str, window: &Window) -> String {
    format!("{instance_id}|{}", window.suffix)
}

impl Leases {
    /// Milliseconds on this table's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spends one unit of each window from the leases held, in order,
    /// stopping at an exhausted window; windows with nothing held say how
    /// much to ask for. When a window refuses, nothing is asked.
    pub fn take(&self, instance_id: &str, windows: &[Window], mono_ms: u64) -> Vec<Slot> {
        let mut table = self.lock();
        let mut slots = Vec::with_capacity(windows.len());
        for window in windows {
            let lease = table
                .get_mut(&key(instance_id, window))
                .filter(|l| l.limit == window.limit);
            let slot = match lease {
                Some(l) if l.left > 0 => {
                    l.left -= 1;
                    Slot::Counted(l.used - l.left)
                }
                Some(l) if l.used >= l.limit => Slot::Refused,
                Some(l) if window.limit >= LEASE_FROM_LIMIT => {
                    Slot::Ask(ask_size(Some(l), mono_ms))
                }
                Some(_) => Slot::Ask(1),
                None => Slot::Ask(1),
            };
            slots.push(slot);
            if slot == Slot::Refused {
                break;
            }
        }
        slots
    }

    /// Takes in the store's grants for the windows that asked (in order; the
    /// store stops at the first window it refuses) and spends one unit of
    /// each. Returns the slots, every one decided.
    pub fn settle(
        &self,
        instance_id: &str,
        windows: &[Window],
        mut slots: Vec<Slot>,
        grants: &[Grant],
        mono_ms: u64,
        wall_ms: i64,
    ) -> Vec<Slot> {
        let mut table = self.lock();
        if table.len() >= CAPACITY {
            table.retain(|_, l| l.ends_at_ms > wall_ms);
            if table.len() >= CAPACITY {
                table.clear();
            }
        }
        let mut grants = grants.iter();
        for (i, window) in windows.iter().enumerate().take(slots.len()) {
            if !matches!(slots[i], Slot::Ask(_)) {
                continue;
            }
            let Some(grant) = grants.next() else {
                // The store refused an earlier window and stopped.
                slots.truncate(i);
                break;
            };
            let k = key(instance_id, window);
            let lease = table
                .entry(k)
                .and_modify(|l| {
                    if l.limit != window.limit {
                        l.left = 0;
                    }
                })
                .or_insert(Lease {
                    limit: window.limit,
                    used: 0,
                    left: 0,
                    last_grant: 0,
                    granted_at_ms: mono_ms,
                    ends_at_ms: wall_ms + window.ttl_ms,
                });
            lease.limit = window.limit;
            lease.used = lease.used.max(grant.used);
            lease.left += grant.granted;
            lease.last_grant = grant.granted;
            lease.granted_at_ms = mono_ms;
            lease.ends_at_ms = wall_ms + window.ttl_ms;
            if grant.granted == 0 {
                slots[i] = Slot::Refused;
                slots.truncate(i + 1);
                break;
            }
            lease.left -= 1;
            slots[i] = Slot::Counted(lease.used - lease.left);
        }
        slots
    }
}

/// What to ask for when a lease has run out: what would last
/// [`LEASE_TARGET_MS`] at the rate the last one was spent, at most twice the
/// last one, at least one unit.
fn ask_size(lease: Option<&Lease>, mono_ms: u64) -> u64 {
    let Some(lease) = lease else { return 1 };
    if lease.last_grant == 0 {
        return 1;
    }
    let elapsed = mono_ms.saturating_sub(lease.granted_at_ms).max(1);
    let want = (lease.last_grant * LEASE_TARGET_MS).div_ceil(elapsed);
    want.clamp(1, lease.last_grant.saturating_mul(2))
        .min(MAX_ASK)
}

/// The store's rule for one window (as `scripts/lease.lua` applies it):
/// grant at most what is asked, what is left, and `1/share` of what is left
/// (at least one unit while anything is left).
pub fn grant_for(ask: u64, limit: u64, used: u64, share: u64) -> u64 {
    let left = limit.saturating_sub(used);
    ask.min(left).min((left / share.max(1)).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(limit: u64) -> Window {
        Window {
            suffix: "m:search:sid:s1:ip:7".into(),
            limit,
            ttl_ms: 60_000,
        }
    }

    /// A store counter for one window, granting as the script does.
    struct Counter {
        used: u64,
    }

    impl Counter {
        fn grant(&mut self, ask: u64, limit: u64) -> Grant {
            let granted = grant_for(ask, limit, self.used, LEASE_SHARE);
            self.used += granted;
            Grant {
                used: self.used,
                granted,
            }
        }
    }

    /// One request through one process's table against the shared counter:
    /// whether it was allowed.
    fn request(leases: &Leases, store: &mut Counter, w: &Window, now: u64) -> bool {
        let windows = std::slice::from_ref(w);
        let mut slots = leases.take("ins", windows, now);
        if !decided(&slots) {
            let Slot::Ask(ask) = slots[0] else {
                unreachable!()
            };
            let grant = store.grant(ask, w.limit);
            slots = leases.settle("ins", windows, slots, &[grant], now, 0);
        }
        matches!(slots[0], Slot::Counted(_))
    }

    #[test]
    fn the_first_lease_is_one_unit_and_leases_grow_with_the_rate() {
        let leases = Leases::default();
        let mut store = Counter { used: 0 };
        let w = window(1_000_000);
        let mut asks = Vec::new();
        for now in 0..200 {
            let slots = leases.take("ins", std::slice::from_ref(&w), now / 10);
            if let Slot::Ask(ask) = slots[0] {
                asks.push(ask);
                let grant = store.grant(ask, w.limit);
                leases.settle(
                    "ins",
                    std::slice::from_ref(&w),
                    slots,
                    &[grant],
                    now / 10,
                    0,
                );
            }
        }
        assert_eq!(asks[0], 1, "the first lease of a window is one unit");
        for pair in asks.windows(2) {
            assert!(pair[1] <= pair[0] * 2, "a lease at most doubles: {asks:?}");
        }
        assert!(
            *asks.last().unwrap() > 100,
            "ten requests a ms ask for more: {asks:?}"
        );
    }

    #[test]
    fn a_slow_rate_keeps_leases_at_one_unit() {
        let leases = Leases::default();
        let mut store = Counter { used: 0 };
        let w = window(1_000_000);
        for i in 0..20 {
            // One request every 200 ms: a lease lasts longer than the target.
            assert!(request(&leases, &mut store, &w, i * 200));
            assert_eq!(store.used, i + 1, "nothing held beyond the request");
        }
    }

    #[test]
    fn three_processes_never_get_more_than_the_limit_and_spend_all_of_it() {
        let tables = [Leases::default(), Leases::default(), Leases::default()];
        let mut store = Counter { used: 0 };
        let w = window(6_000);
        let mut allowed = 0;
        for step in 0..60_000u64 {
            let now = step / 20;
            if request(&tables[(step % 3) as usize], &mut store, &w, now) {
                allowed += 1;
            }
            assert!(store.used <= 6_000, "granted past the limit");
        }
        assert_eq!(allowed, 6_000, "everything granted was spent");
        assert_eq!(store.used, 6_000);
    }

    #[test]
    fn small_limits_lease_one_unit_at_a_time() {
        let leases = Leases::default();
        let mut store = Counter { used: 0 };
        let w = window(LEASE_FROM_LIMIT - 1);
        for i in 0..100 {
            assert!(request(&leases, &mut store, &w, i / 50));
            assert_eq!(store.used, i + 1, "a unit per request, however fast");
        }
    }

    #[test]
    fn leases_fall_to_one_unit_near_the_limit() {
        assert_eq!(grant_for(500, 6_000, 0, 8), 500);
        assert_eq!(grant_for(4_096, 6_000, 0, 8), 750);
        assert_eq!(grant_for(500, 6_000, 5_990, 8), 1);
        assert_eq!(grant_for(500, 6_000, 5_999, 8), 1);
        assert_eq!(grant_for(500, 6_000, 6_000, 8), 0);
        assert_eq!(grant_for(1, 5, 0, 8), 1);
    }

    #[test]
    fn an_exhausted_window_is_refused_locally_until_it_ends() {
        let leases = Leases::default();
        let mut store = Counter { used: 0 };
        let w = window(3);
        for _ in 0..3 {
            assert!(request(&leases, &mut store, &w, 0));
        }
        assert!(
            !request(&leases, &mut store, &w, 0),
            "the store granted nothing"
        );
        // Now refused without asking.
        assert_eq!(
            leases.take("ins", std::slice::from_ref(&w), 1),
            vec![Slot::Refused]
        );
        // The next window is another counter.
        let mut next = w.clone();
        next.suffix.push_str("-next");
        assert!(matches!(
            leases.take("ins", std::slice::from_ref(&next), 1)[0],
            Slot::Ask(1)
        ));
    }

    #[test]
    fn a_changed_limit_drops_the_lease() {
        let leases = Leases::default();
        let mut store = Counter { used: 0 };
        let w = window(1_000);
        for now in 0..50 {
            request(&leases, &mut store, &w, now / 20);
        }
        let lowered = Window { limit: 10, ..w };
        // What is held under the old limit is not spent under the new one.
        assert!(matches!(
            leases.take("ins", std::slice::from_ref(&lowered), 10)[0],
            Slot::Ask(_)
        ));
        assert!(!request(&leases, &mut store, &lowered, 10));
    }

    #[test]
    fn a_day_refusal_stops_the_request_and_its_counts_say_which() {
        let leases = Leases::default();
        let minute = window(100);
        let day = Window {
            suffix: "d:search:sid:s1:1".into(),
            limit: 2,
            ttl_ms: 86_400_000,
        };
        let windows = [minute.clone(), day.clone()];
        let mut m = Counter { used: 0 };
        let mut d = Counter { used: 2 };
        let slots = leases.take("ins", &windows, 0);
        assert_eq!(slots, vec![Slot::Ask(1), Slot::Ask(1)]);
        let grants = [m.grant(1, 100), d.grant(1, 2)];
        let slots = leases.settle("ins", &windows, slots, &grants, 0, 0);
        assert_eq!(slots, vec![Slot::Counted(1), Slot::Refused]);
        assert_eq!(counts(&windows, &slots), vec![1, 3]);
        // And the next request is refused by the day without the store.
        let slots = leases.take("ins", &windows, 1);
        assert!(decided(&slots));
        assert_eq!(counts(&windows, &slots)[1], 3);
    }
}
