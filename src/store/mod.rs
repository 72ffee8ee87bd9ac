//! One storage interface, two backends: [`memory::MemoryStore`] for a single
//! process (the default, and for trying things out) and [`redis::RedisStore`],
//! the system of record shared by any number of broker processes.
//!
//! Mutable credential fields (revocation, expiry, domains, last use) are updated
//! one field at a time, never by writing back a whole record that was read
//! earlier, so a concurrent `last_used_at` update can never resurrect a revoked
//! credential.
//!
//! Revocations (SPEC §5) live in the same store, so that a revocation made
//! through one broker process is seen by every other process on the same Redis.
//! Each entry expires when nothing it could apply to is still alive: a `jti`
//! entry when its token expires (plus leeway), a credential or instance entry
//! when the longest-lived token issued before it has expired. Nothing grows
//! forever.

pub mod counters;
pub mod memory;
pub mod redis;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};

pub use crate::domain::revocation::Revocations;

/// A revocation to record, and until when (unix seconds) it must be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation<'a> {
    Token { jti: &'a str },
    Session { sid: &'a str },
    Credential { id: &'a str, before: i64 },
    Instance { before: i64 },
}

/// One fixed window of a counter: the key suffix names the thing counted and
/// the window it falls in; the key expires when the window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub suffix: String,
    pub limit: u64,
    pub ttl_ms: i64,
}

/// What the gateway asks of the store for one product request, in one round
/// trip: the revocation state of the caller and its rate-limit counters, plus
/// the instance's configuration epoch to validate cached configuration.
#[derive(Debug, Clone)]
pub struct GatewayCheck<'a> {
    pub instance_id: &'a str,
    pub caller: Caller<'a>,
    /// Counted in order, stopping after the first one over its limit.
    pub windows: &'a [Window],
}

#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// An access token: its revocation lists.
    Token {
        jti: &'a str,
        sid: &'a str,
        credential_id: &'a str,
    },
    /// An experience token: its stored credential's fate.
    Experience { credential_id: &'a str },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayState {
    /// Bumped by every change to the instance record; 0 once it is deleted.
    pub epoch: u64,
    /// Access tokens: what the revocation lists say.
    pub revocations: Revocations,
    /// Experience tokens: whether the credential still exists, and when it was
    /// revoked or its grace ends.
    pub credential_exists: bool,
    pub credential_dead_at: Option<DateTime<Utc>>,
    /// Counts of the windows evaluated.
    pub counts: Vec<u64>,
}

/// What the store granted of one window's lease: its counter afterwards (the
/// units granted to every process) and the units granted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub used: u64,
    pub granted: u64,
}

/// The steps of usage over time and how long each is kept: minutes for 48
/// hours, hours for 30 days, so that the series stays bounded per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Minute,
    Hour,
}

impl Step {
    pub const ALL: [Step; 2] = [Step::Minute, Step::Hour];

    pub fn seconds(self) -> i64 {
        match self {
            Step::Minute => 60,
            Step::Hour => 3600,
        }
    }

    pub fn retention_seconds(self) -> i64 {
        match self {
            Step::Minute => 48 * 3600,
            Step::Hour => 30 * 86_400,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Minute => "minute",
            Step::Hour => "hour",
        }
    }

    /// The start (unix seconds) of the step that holds `at`.
    pub fn bucket(self, at: i64) -> i64 {
        at.div_euclid(self.seconds()) * self.seconds()
    }
}

/// Usage over time: (start of the step in unix seconds, counts by credential),
/// oldest first, only steps with counts.
pub type UsageSeries = Vec<(i64, Usage)>;

/// Usage counters of one credential.
pub type Usage = std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A write that must survive a failover was made, but no replica
    /// confirmed it in time (Redis Cluster): it is not acknowledged.
    #[error("no replica confirmed the write within {waited_ms} ms")]
    NotReplicated { waited_ms: u64 },
}

/// Receives what a store's revocation feed reports (see
/// [`Store::follow_revocations`]).
pub trait RevocationFeed: Send + Sync {
    /// The subscription is confirmed: every revocation recorded from now on,
    /// through any process, will be reported.
    fn subscribed(&self);
    /// The revocation lists of this instance changed.
    fn changed(&self, instance_id: &str);
    /// The subscription answered a ping: nothing has been lost so far.
    fn alive(&self);
    /// The signing-key ring changed (SPEC §12).
    fn ring_changed(&self) {}
    /// This process's id in the heartbeat registry, or "" to take no part in
    /// it (no heartbeat, no acknowledgements).
    fn process_id(&self) -> &str {
        ""
    }
    /// `process` applied the announcement `nonce` this process made.
    fn acknowledged(&self, _nonce: &str, _process: &str) {}
    /// Reported before [`RevocationFeed::subscribed`]: whether every write
    /// to what the view holds is reported, including writes the broker did
    /// not make (keyspace notifications), or only the broker's own
    /// announcements.
    fn keyspace_watched(&self, _watched: bool) {}
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether [`Store::follow_revocations`] reports anything. The memory
    /// store has no feed: it is one process's own, and reading it costs no
    /// more than a local view would.
    fn has_revocation_feed(&self) -> bool {
        false
    }

    /// Reports to `feed` every revocation recorded through any process, for
    /// as long as the subscription lasts; returns why it ended.
    async fn follow_revocations(&self, _feed: &dyn RevocationFeed) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "this store has no revocation feed".into(),
        ))
    }

    /// The signing-key ring (SPEC §12): every entry, as JSON, by kid.
    async fn ring(&self) -> Result<Vec<String>, StoreError>;

    /// Writes the first key of an empty ring and announces it; `false`, with
    /// nothing written, when the ring is not empty (another process won the
    /// race: read the ring instead).
    async fn ring_bootstrap(&self, kid: &str, entry: &str) -> Result<bool, StoreError>;

    /// Writes `put` (kid, JSON) and deletes `remove` together, with an
    /// entry of the ring's audit log (the newest `keep` are kept), then
    /// announces the change on the revocation feed.
    async fn ring_write(
        &self,
        put: &[(String, String)],
        remove: &[String],
        audit: &str,
        keep: usize,
    ) -> Result<(), StoreError>;

    /// The ring's audit log, newest first, at most `limit` entries.
    async fn ring_audit(&self, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Creates an instance together with its first secret, atomically.
    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError>;
    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError>;
    /// The instance's configuration epoch; 0 once it is gone.
    async fn epoch(&self, id: &str) -> Result<u64, StoreError>;
    /// The instance with its configuration epoch, read together.
    async fn instance_with_epoch(&self, id: &str) -> Result<Option<(Instance, u64)>, StoreError>;
    async fn instance_id_by_api_key(&self, api_key: &str) -> Result<Option<String>, StoreError>;
    /// Every instance, oldest first. A record that cannot be read is skipped
    /// (and logged once per process), so that one corrupt record does not
    /// hide the others; reading that instance by id still fails.
    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError>;
    /// Replaces the instance's settings; `false` when it does not exist.
    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError>;
    /// Deletes the instance and every credential of it; `false` when absent.
    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError>;
    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// The credential and its instance's configuration epoch (0 once the
    /// instance is gone), read together.
    async fn credential_with_epoch(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<(Option<CredentialRecord>, u64), StoreError>;
    /// Credentials of one kind, oldest first.
    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError>;
    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Marks a credential revoked at `at` unless it already was; returns the
    /// record as it is afterwards.
    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    /// Starts a rotation grace: the credential dies at `at`.
    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError>;
    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError>;
    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a revocation, kept for `ttl_seconds` (at least one second) or
    /// longer if it was already kept longer. Instance entries keep the latest
    /// time (revoke more); credential entries the earliest (a revocation cuts a
    /// rotation grace short).
    async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        ttl_seconds: i64,
    ) -> Result<(), StoreError>;

    /// Every list that could name this token, read at once.
    async fn revocations(
        &self,
        instance_id: &str,
        jti: &str,
        sid: &str,
        credential_id: &str,
    ) -> Result<Revocations, StoreError>;

    /// Remembers what succeeded `jti` on refresh (an opaque record, never a
    /// token), unless something is remembered already; returns what is
    /// remembered afterwards.
    async fn remember_successor(
        &self,
        instance_id: &str,
        jti: &str,
        record: &str,
        ttl_seconds: i64,
    ) -> Result<String, StoreError>;

    async fn successor(&self, instance_id: &str, jti: &str) -> Result<Option<String>, StoreError>;

    /// The gateway's one store call per request (see [`GatewayCheck`]).
    async fn gateway_check(&self, check: GatewayCheck<'_>) -> Result<GatewayState, StoreError>;

    /// The lease variant of [`Store::gateway_check`] (see `app/leases.rs`):
    /// the same reads, then for each window in order a grant of at most
    /// `asks[i]` units, what is left, and `1/share` of what is left (at
    /// least one unit while any is left), stopping after the first window
    /// that grants nothing. Only stores with a revocation feed lease.
    async fn gateway_lease(
        &self,
        _check: GatewayCheck<'_>,
        _asks: &[u64],
        _share: u64,
    ) -> Result<(GatewayState, Vec<Grant>), StoreError> {
        Err(StoreError::Unavailable("this store has no leases".into()))
    }

    /// The processes whose heartbeat is current. Stores without a feed
    /// have no registry: the process is alone.
    async fn live_processes(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Announces a change of the instance's state on the revocation feed,
    /// asking each process that applies it to acknowledge `nonce` to
    /// `origin`.
    async fn announce(
        &self,
        _instance_id: &str,
        _origin: &str,
        _nonce: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Counts one hit in each window in order, atomically, stopping after the
    /// first window whose count exceeds its limit. Returns the counts seen (as
    /// many as windows evaluated). `scope` is an instance id, or `None` for
    /// counters that are not about one instance (brute-force limits).
    async fn hit(&self, scope: Option<&str>, windows: &[Window]) -> Result<Vec<u64>, StoreError>;

    /// Reads counters without counting.
    async fn peek(&self, scope: Option<&str>, suffixes: &[String]) -> Result<Vec<u64>, StoreError>;

    /// Adds to usage counters: (credential id, counter, amount). The counts
    /// also go to that credential's minute and hour steps of the series, at
    /// the credential's `last_used_at` in the same increments (the flush
    /// sends it with every credential it counts), in the same store call.
    async fn add_usage(
        &self,
        instance_id: &str,
        increments: &[(String, String, i64)],
    ) -> Result<(), StoreError>;

    /// Every usage counter of the instance, by credential id.
    async fn usage(&self, instance_id: &str) -> Result<Usage, StoreError>;

    /// Usage over time in steps of `step`, for the steps starting from
    /// `from` to `to` (unix seconds, both step-aligned, inclusive).
    async fn usage_series(
        &self,
        instance_id: &str,
        step: Step,
        from: i64,
        to: i64,
    ) -> Result<UsageSeries, StoreError>;

    /// Prepends an audit entry (JSON) and keeps the newest `keep`.
    async fn append_audit(
        &self,
        instance_id: &str,
        entry: &str,
        keep: usize,
    ) -> Result<(), StoreError>;

    /// Audit entries, newest first, and how many there are.
    async fn audit(
        &self,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StoreError>;
}
