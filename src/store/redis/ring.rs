//! The signing-key ring (SPEC §12): one hash, kid → entry, announced on the
//! revocation channel with the payload [`RING_PAYLOAD`] on every change.

use redis::AsyncCommands;

use super::{script_failed, unavailable, RedisStore};
use crate::store::StoreError;

/// The feed payload of a ring change; instance ids never start with `#`.
pub(super) const RING_PAYLOAD: &str = "#ring";

pub(super) async fn entries(store: &RedisStore) -> Result<Vec<String>, StoreError> {
    let mut conn = store.conn()?;
    conn.hvals(store.ring_key()).await.map_err(unavailable)
}

pub(super) async fn bootstrap(
    store: &RedisStore,
    kid: &str,
    entry: &str,
) -> Result<bool, StoreError> {
    let mut conn = store.conn()?;
    let written: i64 = store
        .scripts
        .ring_bootstrap
        .key(store.ring_key())
        .arg(kid)
        .arg(entry)
        .arg(store.revocations_channel())
        .arg(RING_PAYLOAD)
        .invoke_async(&mut conn)
        .await
        .map_err(script_failed)?;
    store.durable(&mut conn, &store.ring_key()).await?;
    Ok(written == 1)
}

pub(super) async fn audit(store: &RedisStore, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut conn = store.conn()?;
    let last = isize::try_from(limit)
        .unwrap_or(isize::MAX)
        .saturating_sub(1);
    conn.lrange(store.ring_audit_key(), 0, last)
        .await
        .map_err(unavailable)
}

pub(super) async fn write(
    store: &RedisStore,
    put: &[(String, String)],
    remove: &[String],
    audit: &str,
    keep: usize,
) -> Result<(), StoreError> {
    let key = store.ring_key();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (kid, entry) in put {
        pipe.hset(&key, kid, entry).ignore();
    }
    for kid in remove {
        pipe.hdel(&key, kid).ignore();
    }
    let log = store.ring_audit_key();
    let last = isize::try_from(keep)
        .unwrap_or(isize::MAX)
        .saturating_sub(1);
    pipe.lpush(&log, audit).ignore();
    pipe.ltrim(&log, 0, last).ignore();
    let mut conn = store.conn()?;
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(unavailable)?;
    store.durable(&mut conn, &key).await?;
    // Announced after the transaction, not in it: a cluster connection
    // routes `PUBLISH` by its channel's slot, which is not `{ring}`'s, and
    // refuses a transaction that spans two. A lost announcement costs only
    // time: every process also rereads the ring on its own.
    let _: i64 = conn
        .publish(store.revocations_channel(), RING_PAYLOAD)
        .await
        .map_err(unavailable)?;
    Ok(())
}
