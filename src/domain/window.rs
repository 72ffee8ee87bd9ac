//! Fixed time windows for counters (rate limits, brute-force limits) and the
//! one rounding rule for the waits derived from them.
//!
//! A wait is always rounded up to whole seconds: a client told to retry in
//! `n` seconds must find the window over when it does, never one millisecond
//! early.

use chrono::{DateTime, Utc};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// One fixed window of a clock: which one `now` falls in and how long it
/// still lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    /// The window's number since the epoch.
    pub index: i64,
    /// Milliseconds until the window ends (at least 1).
    pub left_ms: i64,
}

impl FixedWindow {
    pub fn of(length_ms: i64, now: DateTime<Utc>) -> Self {
        let now_ms = now.timestamp_millis();
        let index = now_ms.div_euclid(length_ms);
        FixedWindow {
            index,
            left_ms: (index + 1) * length_ms - now_ms,
        }
    }

    pub fn minute(now: DateTime<Utc>) -> Self {
        Self::of(MINUTE_MS, now)
    }

    pub fn day(now: DateTime<Utc>) -> Self {
        Self::of(DAY_MS, now)
    }

    /// Whole seconds until the window ends.
    pub fn left_seconds(&self) -> u64 {
        ceil_seconds(self.left_ms)
    }
}

/// Milliseconds as whole seconds, rounded up; negative waits are 0.
pub fn ceil_seconds(ms: i64) -> u64 {
    u64::try_from(ms.saturating_add(999) / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn waits_round_up() {
        assert_eq!(ceil_seconds(0), 0);
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1000), 1);
        assert_eq!(ceil_seconds(1001), 2);
        assert_eq!(ceil_seconds(-5), 0);
    }

    #[test]
    fn windows_end_on_their_boundary() {
        let now = Utc.timestamp_millis_opt(90_500).unwrap();
        let minute = FixedWindow::minute(now);
        assert_eq!(minute.index, 1);
        assert_eq!(minute.left_ms, 29_500);
        assert_eq!(minute.left_seconds(), 30);
        let day = FixedWindow::day(now);
        assert_eq!(day.index, 0);
        assert_eq!(day.left_ms, DAY_MS - 90_500);
        let edge = FixedWindow::minute(Utc.timestamp_millis_opt(120_000).unwrap());
        assert_eq!((edge.index, edge.left_ms), (2, MINUTE_MS));
    }
}
