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
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}
