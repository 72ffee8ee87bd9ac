//! The signing-key ring (SPEC §12): bootstrap at start-up, rotation, listing,
//! and keeping this process's [`TokenService`] in step with the store.
//!
//! The store is the one record of the ring. A process reads it at start-up,
//! after each change it makes, when the revocation feed announces a change
//! (`#ring`), when a token names a key it does not know (at most once a
//! second, see `startup.rs`), and every [`RING_REREAD`] in case an
//! announcement was lost. A key is published at once and signs only after its
//! publish lead, far longer than any of these delays, so no process meets a
//! token of a key it has not read yet in a routine rotation.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::audit::{AuditEntry, AUDIT_KEEP};
use super::AppState;
use crate::domain::keyring::{KeyState, RingKey, RingTimes};
use crate::store::{Revocation, Store, StoreError};
use crate::tokens::{generate_pkcs8_der, ring_key, KeyEncryptionKey, SealError};

/// A process re-reads the ring at least this often.
pub const RING_REREAD: Duration = Duration::from_secs(30);

/// Reads of the ring that a token with an unknown `kid` may cause are at
/// least this far apart.
pub const RING_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The ring's settings and the key that seals it.
pub struct SigningSettings {
    pub kek: Arc<KeyEncryptionKey>,
    pub publish_lead_seconds: u64,
    pub jwks_max_age_seconds: u64,
    /// Notified when the feed announces a ring change.
    pub changed: Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("a ring entry is not valid JSON: {0}")]
    Corrupt(String),
    #[error("the signing-key ring is empty: start a broker once to seed it with KEYBROKER_SIGNING_KEY_FILE")]
    Empty,
}

/// One key as the admin API lists it: never the private key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub state: &'static str,
    pub created_at: i64,
    pub active_at: i64,
    pub retire_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn read_ring(store: &dyn Store) -> Result<Vec<RingKey>, RingError> {
    let mut ring = store
        .ring()
        .await?
        .iter()
        .map(|json| serde_json::from_str(json).map_err(|e| RingError::Corrupt(e.to_string())))
        .collect::<Result<Vec<RingKey>, _>>()?;
    ring.sort_by(|a, b| (a.active_at, &a.kid).cmp(&(b.active_at, &b.kid)));
    Ok(ring)
}

/// The ring at start-up: as stored, or, when empty, seeded with `seed` (a
/// PKCS#8 key) as the active key. Of processes racing on an empty ring one
/// writes; the others read what it wrote.
pub async fn load_or_bootstrap(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    seed: impl FnOnce() -> Result<Vec<u8>, String>,
    now: i64,
) -> Result<Vec<RingKey>, String> {
    let ring = read_ring(store).await.map_err(|e| e.to_string())?;
    if !ring.is_empty() {
        return Ok(ring);
    }
    let der = seed()?;
    let first = ring_key(&der, kek, now, now, true).map_err(|e| e.to_string())?;
    let json = serde_json::to_string(&first).map_err(|e| e.to_string())?;
    if store
        .ring_bootstrap(&first.kid, &json)
        .await
        .map_err(|e| e.to_string())?
    {
        tracing::info!(kid = %first.kid, "the signing-key ring was empty: seeded with the configured key");
    }
    let ring = read_ring(store).await.map_err(|e| e.to_string())?;
    if ring.is_empty() {
        return Err(RingError::Empty.to_string());
    }
    Ok(ring)
}

pub fn views(ring: &[RingKey], now: i64, times: RingTimes) -> Vec<KeyView> {
    ring.iter()
        .map(|k| KeyView {
            kid: k.kid.clone(),
            state: k.state(ring, now, times).as_str(),
            created_at: k.created_at,
            active_at: k.active_at,
            retire_at: k.retire_at(ring),
            removed_at: k.removed_at(ring, times),
            revoked_at: k.revoked_at,
        })
        .collect()
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub kid: String,
    pub revoked: Vec<String>,
    pub keys: Vec<KeyView>,
}

impl AppState {
    /// Reads the ring from the store and signs and verifies with it.
    pub async fn reload_ring(&self) -> Result<(), RingError> {
        let ring = read_ring(self.store.as_ref()).await?;
        if ring.is_empty() {
            return Err(RingError::Empty);
        }
        self.tokens.install_ring(ring, &self.signing.kek)?;
        Ok(())
    }

    pub fn signing_keys(&self) -> Vec<KeyView> {
        views(
            &self.tokens.ring(),
            self.now().timestamp(),
            self.tokens.ring_times(),
        )
    }

    /// Adds a next key (see [`rotate`]) and signs with the ring as it is
    /// afterwards.
    pub async fn rotate_signing_key(
        &self,
        lead_seconds: u64,
        immediate: bool,
    ) -> Result<Rotation, RingError> {
        let (kid, revoked) = rotate(
            self.store.as_ref(),
            &self.signing.kek,
            self.tokens.ring_times(),
            self.now(),
            lead_seconds,
            immediate,
            AuditEntry::admin("signing_key.rotate"),
        )
        .await?;
        self.reload_ring().await?;
        Ok(Rotation {
            kid,
            revoked,
            keys: self.signing_keys(),
        })
    }
}

/// Adds a next key, active after `lead_seconds`; `immediate` makes it active
/// now and revokes the keys that were active or retired (every token they
/// signed). Entries past their removal go from the store. Announced on the
/// feed, audited as `entry`. Returns the new kid and the revoked ones.
pub async fn rotate(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    times: RingTimes,
    at: chrono::DateTime<chrono::Utc>,
    lead_seconds: u64,
    immediate: bool,
    entry: AuditEntry,
) -> Result<(String, Vec<String>), RingError> {
    let now = at.timestamp();
    let ring = read_ring(store).await?;
    // A ring's first key is seeded by a broker's start-up; a rotation of
    // an empty ring would leave only a key that is not active yet.
    if ring.is_empty() {
        return Err(RingError::Empty);
    }
    let lead = if immediate {
        0
    } else {
        i64::try_from(lead_seconds).unwrap_or(i64::MAX)
    };
    let der = generate_pkcs8_der()?;
    let new = ring_key(&der, kek, now, now.saturating_add(lead), immediate)
        .map_err(|_| SealError::Random)?;
    let mut put = vec![(new.kid.clone(), to_json(&new)?)];
    let mut revoked = Vec::new();
    if immediate {
        for key in &ring {
            let state = key.state(&ring, now, times);
            if key.revoked_at.is_none() && matches!(state, KeyState::Active | KeyState::Retired) {
                let mut key = key.clone();
                key.revoked_at = Some(now);
                put.push((key.kid.clone(), to_json(&key)?));
                revoked.push(key.kid);
            }
        }
    }
    let remove: Vec<String> = ring
        .iter()
        .filter(|k| k.state(&ring, now, times) == KeyState::Removed)
        .map(|k| k.kid.clone())
        .collect();
    let entry = entry.target(&new.kid).detail(serde_json::json!({
        "publish_lead_seconds": lead,
        "immediate": immediate,
        "revoked": revoked,
        "removed": remove,
    }));
    let audit = entry.stamped_at(at).unwrap_or_default();
    store.ring_write(&put, &remove, &audit, AUDIT_KEEP).await?;
    if immediate {
        revoke_everything_issued_by(store, now, times).await?;
    }
    Ok((new.kid, revoked))
}

/// A leaked key: every token issued before the second of the rotation joins
/// the revocation lists (an instance revocation, SPEC §5). Every process's
/// ring drops the revoked keys as soon as it hears of the change, but the
/// product path reads the lists from the store on every request: there the
/// old tokens are refused on the very next request, whichever process
/// serves it. The second of the rotation itself is left out: revocation
/// times are whole seconds, and the clients that authenticate again at once
/// get tokens of the new key in that second. Old-key tokens of that second
/// (and a forger's, dated later) die with the key, when each process reads
/// the ring (milliseconds after the announcement).
async fn revoke_everything_issued_by(
    store: &dyn Store,
    now: i64,
    times: RingTimes,
) -> Result<(), StoreError> {
    let ttl = times
        .max_token_ttl
        .saturating_add(times.leeway)
        .saturating_add(1);
    for instance in store.list_instances().await? {
        store
            .revoke(
                &instance.id,
                Revocation::Instance {
                    before: now.saturating_sub(1),
                },
                ttl,
            )
            .await?;
    }
    Ok(())
}

fn to_json(key: &RingKey) -> Result<String, RingError> {
    serde_json::to_string(key).map_err(|e| RingError::Corrupt(e.to_string()))
}

/// Keeps this process's keys in step with the store's ring, for as long as
/// the state lives: on an announcement at once, on an unknown `kid` at most
/// once per [`RING_REFRESH_MIN_INTERVAL`], and every [`RING_REREAD`].
pub async fn follow_ring(
    state: std::sync::Weak<AppState>,
    changed: Arc<tokio::sync::Notify>,
    unknown_kid: Arc<tokio::sync::Notify>,
) {
    let mut last_read: Option<tokio::time::Instant> = None;
    loop {
        let announced = tokio::select! {
            () = changed.notified() => true,
            () = unknown_kid.notified() => false,
            () = tokio::time::sleep(RING_REREAD) => true,
        };
        if !announced && last_read.is_some_and(|t| t.elapsed() < RING_REFRESH_MIN_INTERVAL) {
            continue;
        }
        let Some(state) = state.upgrade() else { break };
        last_read = Some(tokio::time::Instant::now());
        if let Err(e) = state.reload_ring().await {
            tracing::warn!(error = %e, "the signing-key ring could not be read; keeping the keys known");
        }
    }
}
