//! Quota leases on the product hot path (`scripts/lease.lua`): the same
//! reads as the gateway check, then grants of units from each window's
//! counter instead of one hit. Every key is under the instance's hash tag.

use super::gateway::{caller_kind, keys, read_state};
use super::{script_failed, RedisStore};
use crate::store::{GatewayCheck, GatewayState, Grant, StoreError};

pub(super) async fn take(
    store: &RedisStore,
    check: GatewayCheck<'_>,
    asks: &[u64],
    share: u64,
) -> Result<(GatewayState, Vec<Grant>), StoreError> {
    let mut invocation = store.scripts.lease.prepare_invoke();
    for key in keys(store, &check) {
        invocation.key(key);
    }
    invocation.arg(caller_kind(check.caller)).arg(share.max(1));
    for (window, ask) in check.windows.iter().zip(asks) {
        invocation
            .arg(*ask)
            .arg(window.limit)
            .arg(window.ttl_ms.max(1));
    }
    let mut conn = store.conn()?;
    let out: Vec<i64> = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(script_failed)?;
    let (state, first) = read_state(&out, check.caller);
    let number = |n: &i64| u64::try_from(*n).unwrap_or(0);
    let grants = out
        .get(first..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| Grant {
            used: number(&pair[0]),
            granted: number(&pair[1]),
        })
        .collect();
    Ok((state, grants))
}
