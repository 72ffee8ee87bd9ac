//! Token revocations (SPEC §5) and refresh successors: short-lived keys under
//! the instance's hash tag, each expiring when nothing it could apply to is
//! still alive. Every revocation is announced on the feed's channel by the
//! script that records it.

use redis::AsyncCommands;

use super::{first_int, scripts, unavailable, whole_number, RedisStore, REPLACED_CORRUPT};
use crate::store::{Revocation, Revocations, StoreError};

pub(super) async fn revoke(
    store: &RedisStore,
    instance_id: &str,
    revocation: Revocation<'_>,
    ttl_seconds: i64,
) -> Result<(), StoreError> {
    let key = store.revocation_key(instance_id, &revocation);
    let ttl = ttl_seconds.max(1);
    let (value, mode) = match revocation {
        Revocation::Token { .. } | Revocation::Session { .. } => (1, "max"),
        Revocation::Credential { before, .. } => (before, "min"),
        Revocation::Instance { before } => (before, "max"),
    };
    let mut script = scripts::eval(scripts::REVOKE_AT, std::slice::from_ref(&key));
    script
        .arg(value)
        .arg(ttl)
        .arg(mode)
        .arg(store.revocations_channel())
        .arg(instance_id);
    let replies = store.write_durably(&key, vec![script], false).await?;
    let outcome = first_int(&replies)?;
    if outcome == REPLACED_CORRUPT {
        tracing::warn!(
            key,
            "stored data was corrupt: a revocation value that was not a number was replaced"
        );
    }
    Ok(())
}

pub(super) async fn of_token(
    store: &RedisStore,
    instance_id: &str,
    jti: &str,
    sid: &str,
    credential_id: &str,
) -> Result<Revocations, StoreError> {
    let keys = [
        store.revocation_key(instance_id, &Revocation::Token { jti }),
        store.revocation_key(instance_id, &Revocation::Session { sid }),
        store.revocation_key(
            instance_id,
            &Revocation::Credential {
                id: credential_id,
                before: 0,
            },
        ),
        store.revocation_key(instance_id, &Revocation::Instance { before: 0 }),
    ];
    let mut conn = store.conn()?;
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    // Present values must be whole numbers: garbage fails the read (and so
    // the request, with 503), as it does in the gateway's script.
    let mut read = [None; 4];
    for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
        if let Some(raw) = value {
            read[i] = Some(whole_number(raw, key)?);
        }
    }
    Ok(Revocations {
        jti: read[0].is_some(),
        sid: read[1].is_some(),
        credential_before: read[2],
        instance_before: read[3],
    })
}

pub(super) async fn remember_successor(
    store: &RedisStore,
    instance_id: &str,
    jti: &str,
    record: &str,
    ttl_seconds: i64,
) -> Result<String, StoreError> {
    let mut conn = store.conn()?;
    // NX + GET: atomically store ours unless another refresh won the race.
    let previous: Option<String> = redis::cmd("SET")
        .arg(store.successor_key(instance_id, jti))
        .arg(record)
        .arg("NX")
        .arg("GET")
        .arg("EX")
        .arg(ttl_seconds.max(1))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(previous.unwrap_or_else(|| record.to_owned()))
}

pub(super) async fn successor(
    store: &RedisStore,
    instance_id: &str,
    jti: &str,
) -> Result<Option<String>, StoreError> {
    let mut conn = store.conn()?;
    conn.get(store.successor_key(instance_id, jti))
        .await
        .map_err(unavailable)
}
