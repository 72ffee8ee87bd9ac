//! Prometheus counters, kept as plain atomics: a handful of numbers does not
//! need a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    auth_succeeded: AtomicU64,
    auth_failed: AtomicU64,
    tokens_issued: AtomicU64,
    tokens_refreshed: AtomicU64,
    revocation_view_hits: AtomicU64,
    revocation_view_misses: AtomicU64,
    revocation_feed_losses: AtomicU64,
    revocation_feed_up: AtomicU64,
    product_checks_local: AtomicU64,
    product_checks_store: AtomicU64,
}

impl Metrics {
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_succeeded(&self) {
        self.auth_succeeded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failed(&self) {
        self.auth_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_refreshed(&self) {
        self.tokens_refreshed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn revocation_view_hit(&self) {
        self.revocation_view_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn revocation_view_miss(&self) {
        self.revocation_view_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A product request decided without a store round trip.
    pub fn lease_local(&self) {
        self.product_checks_local.fetch_add(1, Ordering::Relaxed);
    }

    /// A product request (with a live feed) that read the store or took a
    /// lease.
    pub fn lease_round_trip(&self) {
        self.product_checks_store.fetch_add(1, Ordering::Relaxed);
    }

    pub fn revocation_feed_up(&self) {
        self.revocation_feed_up.store(1, Ordering::Relaxed);
    }

    pub fn revocation_feed_lost(&self) {
        self.revocation_feed_up.store(0, Ordering::Relaxed);
        self.revocation_feed_losses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP keybroker_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE keybroker_http_responses_total counter\n");
        for (i, count) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "keybroker_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                count.load(Ordering::Relaxed)
            );
        }
        let counters = [
            (
                "keybroker_auth_succeeded_total",
                "Successful /v1/auth exchanges.",
                &self.auth_succeeded,
            ),
            (
                "keybroker_auth_failed_total",
                "Refused /v1/auth exchanges.",
                &self.auth_failed,
            ),
            (
                "keybroker_tokens_issued_total",
                "Access tokens minted by /v1/auth.",
                &self.tokens_issued,
            ),
            (
                "keybroker_tokens_refreshed_total",
                "Access tokens minted by /v1/refreshToken.",
                &self.tokens_refreshed,
            ),
            (
                "keybroker_revocation_view_hits_total",
                "Revocation checks answered by the local view.",
                &self.revocation_view_hits,
            ),
            (
                "keybroker_revocation_view_misses_total",
                "Revocation checks (outside product requests) that read the store.",
                &self.revocation_view_misses,
            ),
            (
                "keybroker_product_checks_local_total",
                "Product requests decided from the local view and leases, without the store.",
                &self.product_checks_local,
            ),
            (
                "keybroker_product_checks_store_total",
                "Product requests, with the feed live, that read the store or took a lease.",
                &self.product_checks_store,
            ),
            (
                "keybroker_revocation_feed_losses_total",
                "Times the revocation feed's subscription was lost.",
                &self.revocation_feed_losses,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str("# HELP keybroker_revocation_feed_up Whether the revocation feed's subscription is up.\n");
        out.push_str("# TYPE keybroker_revocation_feed_up gauge\n");
        let _ = writeln!(
            out,
            "keybroker_revocation_feed_up {}",
            self.revocation_feed_up.load(Ordering::Relaxed)
        );
        out
    }
}
