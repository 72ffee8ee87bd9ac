//! The heartbeat registry and acknowledgements (see `app/propagation.rs`).
//!
//! Each process that follows the revocation feed writes a heartbeat on its
//! feed's ping tick, and only trusts its local view while those succeed
//! (`feed.rs`). A process that changes what the others may hold announces
//! the change on the revocation channel with its id and a nonce; each
//! process applies it, then publishes the nonce and its own id on the
//! announcer's acknowledgement channel, to which the announcer's feed
//! connection is subscribed. The registry is one sorted set under its own
//! hash tag (`{procs}`); every other step is a `PUBLISH`.

use super::{unavailable, RedisStore};
use crate::store::StoreError;

/// A process heard within this long counts as live. Longer than the time a
/// process keeps trusting its view without hearing from Redis
/// ([`crate::app::revocation_view::STALE_AFTER`]), so that every process
/// that may answer from its view is counted.
pub const LIVE_WINDOW_MS: u64 = 2_000;

pub(super) async fn beat(store: &RedisStore, process_id: &str) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: Vec<String> = store
        .scripts
        .heartbeat
        .key(store.processes_key())
        .arg("beat")
        .arg(process_id)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn live(store: &RedisStore) -> Result<Vec<String>, StoreError> {
    let mut conn = store.conn()?;
    store
        .scripts
        .heartbeat
        .key(store.processes_key())
        .arg("live")
        .arg(LIVE_WINDOW_MS)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)
}

/// Announces a change of the instance, asking for acknowledgements.
pub(super) async fn announce(
    store: &RedisStore,
    instance_id: &str,
    origin: &str,
    nonce: &str,
) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(store.revocations_channel())
        .arg(format!("{instance_id} {origin} {nonce}"))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Tells `origin` that this process applied its announcement `nonce`.
pub(super) async fn acknowledge(
    store: &RedisStore,
    origin: &str,
    nonce: &str,
    process_id: &str,
) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(store.ack_channel(origin))
        .arg(format!("{nonce} {process_id}"))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}
