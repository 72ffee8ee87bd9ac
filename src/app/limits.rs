//! Rate-limit arithmetic for product requests (SPEC §6): which fixed windows
//! a request counts in, and the decision on the counts the store returns.
//!
//! The store counts a hit in each window atomically and stops after the first
//! one over its limit; the decision is taken here with the product's current
//! limits, so a limit changed by an operator applies from the next request.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::domain::instance::{Instance, Product};
use crate::domain::network::limit_key;
use crate::domain::window::{ceil_seconds, FixedWindow};
use crate::error::ApiError;
use crate::store::counters::{self, RateSubject};
use crate::store::Window;

/// Where the caller stands against its per-minute limit.
#[derive(Debug, Clone, Copy)]
pub struct RateStatus {
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

/// The fixed windows this request counts in: per subject and client IP per
/// minute, and per subject per day when the experience has a cap.
pub fn windows_for(
    instance: &Instance,
    slug: &str,
    subject: RateSubject<'_>,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Vec<Window> {
    let Some(product) = instance.products.get(slug) else {
        return Vec::new();
    };
    let minute = FixedWindow::minute(now);
    let mut windows = vec![Window {
        suffix: counters::product_minute(slug, subject, &limit_key(ip), minute.index),
        limit: u64::from(product.rate_limit_per_minute),
        ttl_ms: minute.left_ms,
    }];
    if let Some(cap) = product.daily_cap {
        let day = FixedWindow::day(now);
        windows.push(Window {
            suffix: counters::product_day(slug, subject, day.index),
            limit: u64::from(cap),
            ttl_ms: day.left_ms,
        });
    }
    windows
}

/// Decides on the counts the store returned, with the product's current limits.
pub fn rate_decision(
    product: &Product,
    windows: &[Window],
    counts: &[u64],
) -> Result<RateStatus, ApiError> {
    let per_minute = u64::from(product.rate_limit_per_minute);
    let minute_left = windows.first().map_or(0, |w| w.ttl_ms);
    let used = counts.first().copied().unwrap_or(0);
    if used > per_minute {
        return Err(ApiError::RateLimited {
            window: "minute",
            limit: per_minute,
            retry_after: ceil_seconds(minute_left),
        });
    }
    if let (Some(cap), Some(&day_used), Some(day)) =
        (product.daily_cap, counts.get(1), windows.get(1))
    {
        if day_used > u64::from(cap) {
            return Err(ApiError::RateLimited {
                window: "day",
                limit: u64::from(cap),
                retry_after: ceil_seconds(day.ttl_ms),
            });
        }
    }
    Ok(RateStatus {
        limit: per_minute,
        remaining: per_minute.saturating_sub(used),
        reset_seconds: ceil_seconds(minute_left),
    })
}
