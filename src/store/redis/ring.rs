//! The signing-key ring (SPEC §12): one hash, kid → entry, announced on the
//! revocation channel with the payload [`RING_PAYLOAD`] on every change.

use redis::AsyncCommands;

use super::{first_int, scripts, unavailable, RedisStore};
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
    let key = store.ring_key();
    let mut script = scripts::eval(scripts::RING_BOOTSTRAP, std::slice::from_ref(&key));
    script
        .arg(kid)
        .arg(entry)
        .arg(store.revocations_channel())
        .arg(RING_PAYLOAD);
    let written = first_int(&store.write_durably(&key, vec![script], false).await?)?;
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
    let mut commands = Vec::new();
    for (kid, entry) in put {
        commands.push(redis::Cmd::hset(&key, kid, entry));
    }
    for kid in remove {
        commands.push(redis::Cmd::hdel(&key, kid));
    }
    let log = store.ring_audit_key();
    let last = isize::try_from(keep)
        .unwrap_or(isize::MAX)
        .saturating_sub(1);
    commands.push(redis::Cmd::lpush(&log, audit));
    commands.push(redis::Cmd::ltrim(&log, 0, last));
    store.write_durably(&key, commands, true).await?;
    // Announced after the transaction, not in it: a cluster connection
    // routes `PUBLISH` by its channel's slot, which is not `{ring}`'s, and
    // refuses a transaction that spans two. A lost announcement costs only
    // time: every process also rereads the ring on its own.
    let mut conn = store.conn()?;
    let _: i64 = conn
        .publish(store.revocations_channel(), RING_PAYLOAD)
        .await
        .map_err(unavailable)?;
    Ok(())
}
