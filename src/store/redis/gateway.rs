//! The gateway check: on the product hot path, one script call
//! (`scripts/gateway_check.lua`) reads the instance epoch and the caller's
//! revocation state and counts its rate-limit windows. A stored value it
//! cannot read fails the call (`StoreError::Corrupt`), never reads as
//! "not revoked".

use chrono::{TimeZone, Utc};

use super::{script_failed, RedisStore};
use crate::store::{Caller, GatewayCheck, GatewayState, Revocation, Revocations, StoreError};

/// The script's keys, all under the instance's hash tag: its epoch, the
/// caller's revocation keys or credential, then one counter per window.
pub(super) fn keys(store: &RedisStore, check: &GatewayCheck<'_>) -> Vec<String> {
    let id = check.instance_id;
    let mut keys = vec![store.epoch_key(id)];
    match check.caller {
        Caller::Token {
            jti,
            sid,
            credential_id,
        } => {
            keys.push(store.revocation_key(id, &Revocation::Token { jti }));
            keys.push(store.revocation_key(id, &Revocation::Session { sid }));
            keys.push(store.revocation_key(
                id,
                &Revocation::Credential {
                    id: credential_id,
                    before: 0,
                },
            ));
            keys.push(store.revocation_key(id, &Revocation::Instance { before: 0 }));
        }
        Caller::Experience { credential_id } => keys.push(store.cred_key(id, credential_id)),
    }
    for window in check.windows {
        keys.push(store.counter_key(Some(id), &window.suffix));
    }
    keys
}

pub(super) async fn check(
    store: &RedisStore,
    check: GatewayCheck<'_>,
) -> Result<GatewayState, StoreError> {
    let mut invocation = store.scripts.gateway_check.prepare_invoke();
    for key in keys(store, &check) {
        invocation.key(key);
    }
    invocation.arg(caller_kind(check.caller));
    for window in check.windows {
        invocation.arg(window.limit).arg(window.ttl_ms.max(1));
    }
    let mut conn = store.conn()?;
    let out: Vec<i64> = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(script_failed)?;
    let (mut state, first_count) = read_state(&out, check.caller);
    state.counts = out
        .iter()
        .skip(first_count)
        .map(|n| u64::try_from(*n).unwrap_or(0))
        .collect();
    Ok(state)
}

/// The caller's kind, as `gateway_check.lua` and `lease.lua` both take it
/// (their ARGV[1]).
pub(super) fn caller_kind(caller: Caller<'_>) -> &'static str {
    match caller {
        Caller::Token { .. } => "token",
        Caller::Experience { .. } => "xt",
    }
}

/// The epoch and the caller's state from a script's answer, and where the
/// windows' part of the answer begins.
pub(super) fn read_state(out: &[i64], caller: Caller<'_>) -> (GatewayState, usize) {
    let at = |i: usize| out.get(i).copied().unwrap_or(-1);
    let known = |v: i64| (v >= 0).then_some(v);
    let mut state = GatewayState {
        epoch: u64::try_from(at(0)).unwrap_or(0),
        ..GatewayState::default()
    };
    let first_count = match caller {
        Caller::Token { .. } => {
            state.revocations = Revocations {
                jti: at(1) >= 0,
                sid: at(2) >= 0,
                credential_before: known(at(3)),
                instance_before: known(at(4)),
            };
            5
        }
        Caller::Experience { .. } => {
            state.credential_exists = at(1) == 1;
            let dead = [known(at(2)), known(at(3))].into_iter().flatten().min();
            state.credential_dead_at = dead.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
            4
        }
    };
    (state, first_count)
}
