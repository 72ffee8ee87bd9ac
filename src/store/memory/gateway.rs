//! The gateway check: the instance epoch, the caller's revocation state (or,
//! for an experience token, its credential) and its rate-limit windows, read
//! and counted in one call, as the Redis backend does with one script.

use super::{counters, revocations, MemoryStore};
use crate::store::{Caller, GatewayCheck, GatewayState, Revocations};

pub(super) fn check(store: &MemoryStore, check: GatewayCheck<'_>) -> GatewayState {
    let (epoch, credential) = {
        let inner = store.read();
        let epoch = inner.epochs.get(check.instance_id).copied().unwrap_or(0);
        let credential = match check.caller {
            Caller::Experience { credential_id } => inner
                .credentials
                .get(credential_id)
                .filter(|c| c.instance_id == check.instance_id)
                .cloned(),
            Caller::Token { .. } => None,
        };
        (epoch, credential)
    };
    let revocations = match check.caller {
        Caller::Token {
            jti,
            sid,
            credential_id,
        } => revocations::of_token(store, check.instance_id, jti, sid, credential_id),
        Caller::Experience { .. } => Revocations::default(),
    };
    let counts = counters::hit(store, Some(check.instance_id), check.windows);
    GatewayState {
        epoch,
        revocations,
        credential_exists: credential.is_some(),
        credential_dead_at: credential.and_then(|c| c.dead_since()),
        counts,
    }
}
