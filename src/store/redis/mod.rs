//! Redis backend: the system of record in production, shared by every broker
//! process. Run Redis with AOF persistence (see `docker-compose.yml`). The
//! same code serves a Redis Cluster (SPEC §13): `cluster.rs` says what
//! changes there.
//!
//! Key layout (`P` is the configured prefix, `kb` by default; the names are
//! built in `keys.rs`). Per-instance keys carry the instance id as a hash tag
//! (`{<instance>}`), so that every script and transaction about one instance
//! stays in one cluster slot (`slots.rs` tests that for every script):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:instances` | zset | instance ids by creation time |
//! | `P:apikey:<api key>` | string | instance id |
//! | `P:credhash:<hmac>` | string | `<instance id>/<credential id>` |
//! | `P:{<instance>}:instance` | string | instance JSON |
//! | `P:{<instance>}:epoch` | string | bumped by every change of the instance JSON |
//! | `P:{<instance>}:creds` | zset | credential ids by creation time |
//! | `P:{<instance>}:cred:<id>` | hash | `record` (JSON) and the mutable fields |
//! | `P:{<instance>}:rev:jti:<jti>` | string, TTL | revoked token |
//! | `P:{<instance>}:rev:sid:<sid>` | string, TTL | revoked session |
//! | `P:{<instance>}:rev:cred:<id>` | string, TTL | unix second: tokens of the credential issued by then are dead |
//! | `P:{<instance>}:rev:all` | string, TTL | unix second: tokens of the instance issued by then are dead |
//! | `P:{<instance>}:succ:<jti>` | string, TTL | id and times of the token that succeeded `jti` on refresh |
//! | `P:{<instance>}:rl:<what>:<window>` | string, TTL | a rate-limit counter, dies with its window |
//! | `P:{global}:rl:<what>:<window>` | string, TTL | a brute-force counter (per IP, per API key) |
//! | `P:{<instance>}:usage` | hash | `<credential>\|<counter>` → count |
//! | `P:{<instance>}:useries:<step>:<start>` | hash, TTL | usage in one minute or hour step, kept 48 h or 30 days |
//! | `P:{<instance>}:audit` | list | audit entries (JSON), newest first, trimmed |
//! | `P:{ring}:keys` | hash | the signing-key ring: kid → key JSON, the private key sealed (SPEC §12) |
//! | `P:{ring}:audit` | list | audit entries of ring changes (JSON), newest first, trimmed |
//!
//! **Lookups that start from a credential** (an API key on `/v1/auth`, a
//! secret's or domain key's hash) read one untagged index key, whose value
//! names the instance (and credential), then go to that instance's slot:
//! two one-slot reads, never a cross-slot script. The index keys are left
//! untagged on purpose so that they spread over the whole cluster. Writes
//! that touch an instance's keys and its index entries are ordered one-slot
//! steps, never one transaction: the instance's own keys first, the index
//! entry that makes a credential usable last; a delete removes the
//! instance's own keys first. A step that fails leaves either nothing usable
//! or an index entry that points at nothing.
//!
//! The ring's two keys share the hash tag `{ring}`: a ring write changes
//! both in one transaction. The ring is owned by the broker as a whole: its entries are deleted by
//! the ring write that finds them removed (`domain/keyring.rs`), so it holds
//! a handful of keys. Its first key is written by `scripts/ring_bootstrap.lua`
//! only into an empty hash, so two processes starting together on an empty
//! ring end with one key. Every ring change is announced on the revocation
//! channel with the payload `#ring` (no instance id starts with `#`).
//!
//! Instance, credential, usage and audit keys are owned: they live exactly as
//! long as their instance or credential and are deleted with it. Field updates
//! go through a script that refuses to recreate a deleted credential's hash.
//! Every other key carries a TTL.
//!
//! Every revocation is also announced on the channel `P:revocations` (payload:
//! the instance id), by the same script that records it, for the local views
//! of the other processes (`app/revocation_view.rs`). Changes are announced
//! again with an origin and a nonce, and acknowledged on `P:ack:<process>`
//! by every process that applied them; `P:{procs}:live` (a sorted set, the
//! heartbeat registry) says which processes are live (`heartbeat.rs`).
//! Rate-limit counters on the hot path count units leased to processes
//! (`leases.rs`, `scripts/lease.lua`).
//!
//! The [`Store`] implementation below only dispatches, by area: `instances`,
//! `credentials`, `revocations`, `counters` (rate limits, usage, audit), `feed`
//! (the revocation feed) and `gateway` (the product hot path's one call). The
//! Lua scripts live in `scripts/`, one file each.

mod cluster;
mod cluster_feed;
mod connection;
mod counters;
mod credentials;
mod durable;
mod feed;
mod gateway;
mod heartbeat;
mod instances;
mod keys;
mod keyspace;
mod leases;
mod revocations;
mod ring;
mod scripts;
#[cfg(test)]
mod slots;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::{
    GatewayCheck, GatewayState, Grant, Revocation, RevocationFeed, Revocations, Step, Store,
    StoreError, Usage, UsageSeries, Window,
};
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};

pub use feed::FEED_PING_INTERVAL;
pub use heartbeat::LIVE_WINDOW_MS;

/// Each thread talks to Redis over its own multiplexed connection, whose
/// driver task runs on that thread's runtime. One shared connection would put
/// every command of every actix worker through a hop to the thread that
/// created it and back: measured, that cross-thread wake-up cost more CPU than
/// the rest of a gateway request.
#[derive(Clone)]
pub struct RedisStore {
    target: connection::Target,
    timeout: Duration,
    /// Tells apart stores of one process (tests run many) in the thread-local map.
    id: u64,
    prefix: String,
    scripts: scripts::Scripts,
    /// Instances whose unreadable record a listing skipped and logged, so
    /// that each is logged once per process, not on every listing.
    skipped_instances: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// What `revoke_at.lua` answers when the value it was to compare was not a
/// number and it replaced it.
const REPLACED_CORRUPT: i64 = 2;

/// A script's failure. A script that read a stored value it cannot use
/// fails closed with the error code `CORRUPT`: that is corrupt data, not an
/// unreachable store.
fn script_failed(e: redis::RedisError) -> StoreError {
    match e.code() {
        Some("CORRUPT") => corrupt(e.detail().unwrap_or("a script read corrupt data")),
        _ => unavailable(e),
    }
}

/// The integer a script or command answered first.
fn first_int(replies: &[redis::Value]) -> Result<i64, StoreError> {
    match replies.first() {
        Some(redis::Value::Int(n)) => Ok(*n),
        other => Err(corrupt(format!("expected an integer reply, got {other:?}"))),
    }
}

/// A stored time or revocation value: whole digits, as the broker writes
/// them (the scripts apply the same rule). Anything else is corrupt, and
/// is never read as "absent" or "not revoked".
fn whole_number(raw: &str, what: &str) -> Result<i64, StoreError> {
    let digits = !raw.is_empty() && raw.len() <= 15 && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse() {
        Ok(n) if digits => Ok(n),
        _ => Err(corrupt(format!("{what} is not a whole number"))),
    }
}

/// Times are stored as unix milliseconds.
fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    let ms = whole_number(raw, "a stored time")?;
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("timestamp out of range"))
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        connection::ping(self).await
    }

    fn has_revocation_feed(&self) -> bool {
        true
    }

    async fn ring(&self) -> Result<Vec<String>, StoreError> {
        ring::entries(self).await
    }

    async fn ring_bootstrap(&self, kid: &str, entry: &str) -> Result<bool, StoreError> {
        ring::bootstrap(self, kid, entry).await
    }

    async fn ring_write(
        &self,
        put: &[(String, String)],
        remove: &[String],
        audit: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        ring::write(self, put, remove, audit, keep).await
    }

    async fn ring_audit(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        ring::audit(self, limit).await
    }

    /// A dedicated pub/sub connection, pinged every [`FEED_PING_INTERVAL`]
    /// (see `feed.rs`).
    async fn follow_revocations(&self, feed: &dyn RevocationFeed) -> Result<(), StoreError> {
        feed::follow(self, feed).await
    }

    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError> {
        instances::insert(self, instance, first_secret).await
    }

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        instances::get(self, id).await
    }

    async fn epoch(&self, id: &str) -> Result<u64, StoreError> {
        instances::epoch(self, id).await
    }

    async fn instance_with_epoch(&self, id: &str) -> Result<Option<(Instance, u64)>, StoreError> {
        instances::with_epoch(self, id).await
    }

    async fn instance_id_by_api_key(&self, api_key: &str) -> Result<Option<String>, StoreError> {
        instances::id_by_api_key(self, api_key).await
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        instances::list(self).await
    }

    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError> {
        instances::update(self, instance).await
    }

    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError> {
        instances::delete(self, id).await
    }

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError> {
        credentials::insert(self, credential).await
    }

    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::get(self, instance_id, id).await
    }

    async fn credential_with_epoch(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<(Option<CredentialRecord>, u64), StoreError> {
        credentials::with_epoch(self, instance_id, id).await
    }

    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        credentials::list(self, instance_id, kind).await
    }

    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::by_hash(self, hash).await
    }

    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::revoke(self, instance_id, id, at).await
    }

    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::expire(self, instance_id, id, at).await
    }

    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::set_domains(self, instance_id, id, domains).await
    }

    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        credentials::touch(self, instance_id, id, at).await
    }

    async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        ttl_seconds: i64,
    ) -> Result<(), StoreError> {
        revocations::revoke(self, instance_id, revocation, ttl_seconds).await
    }

    async fn revocations(
        &self,
        instance_id: &str,
        jti: &str,
        sid: &str,
        credential_id: &str,
    ) -> Result<Revocations, StoreError> {
        revocations::of_token(self, instance_id, jti, sid, credential_id).await
    }

    async fn remember_successor(
        &self,
        instance_id: &str,
        jti: &str,
        record: &str,
        ttl_seconds: i64,
    ) -> Result<String, StoreError> {
        revocations::remember_successor(self, instance_id, jti, record, ttl_seconds).await
    }

    async fn successor(&self, instance_id: &str, jti: &str) -> Result<Option<String>, StoreError> {
        revocations::successor(self, instance_id, jti).await
    }

    async fn hit(&self, scope: Option<&str>, windows: &[Window]) -> Result<Vec<u64>, StoreError> {
        counters::hit(self, scope, windows).await
    }

    async fn peek(&self, scope: Option<&str>, suffixes: &[String]) -> Result<Vec<u64>, StoreError> {
        counters::peek(self, scope, suffixes).await
    }

    async fn add_usage(
        &self,
        instance_id: &str,
        increments: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        counters::add_usage(self, instance_id, increments).await
    }

    async fn usage(&self, instance_id: &str) -> Result<Usage, StoreError> {
        counters::usage(self, instance_id).await
    }

    async fn usage_series(
        &self,
        instance_id: &str,
        step: Step,
        from: i64,
        to: i64,
    ) -> Result<UsageSeries, StoreError> {
        counters::usage_series(self, instance_id, step, from, to).await
    }

    async fn append_audit(
        &self,
        instance_id: &str,
        entry: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        counters::append_audit(self, instance_id, entry, keep).await
    }

    async fn audit(
        &self,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StoreError> {
        counters::audit(self, instance_id, offset, limit).await
    }

    async fn gateway_check(&self, check: GatewayCheck<'_>) -> Result<GatewayState, StoreError> {
        gateway::check(self, check).await
    }

    async fn gateway_lease(
        &self,
        check: GatewayCheck<'_>,
        asks: &[u64],
        share: u64,
    ) -> Result<(GatewayState, Vec<Grant>), StoreError> {
        leases::take(self, check, asks, share).await
    }

    async fn live_processes(&self) -> Result<Vec<String>, StoreError> {
        heartbeat::live(self).await
    }

    async fn announce(
        &self,
        instance_id: &str,
        origin: &str,
        nonce: &str,
    ) -> Result<(), StoreError> {
        heartbeat::announce(self, instance_id, origin, nonce).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_are_whole_digits_only() {
        assert_eq!(whole_number("0", "v").unwrap(), 0);
        assert_eq!(whole_number("1735689600", "v").unwrap(), 1_735_689_600);
        assert_eq!(
            whole_number("1735689600123", "v").unwrap(),
            1_735_689_600_123
        );
        for garbage in [
            "",
            "-1",
            "+1",
            "1e3",
            "1.5",
            " 1",
            "abc",
            "9999999999999999",
        ] {
            let e = whole_number(garbage, "rev:all").unwrap_err();
            assert!(
                matches!(&e, StoreError::Corrupt(m) if m.contains("rev:all")),
                "{garbage:?}: {e:?}"
            );
        }
    }
}
