//! Token revocations (SPEC §5) and refresh successors, kept as expiring
//! entries. A credential revocation keeps the earliest cut-off and an instance
//! revocation the latest, as the Redis script does.

use super::expiring::revocation_key;
use super::MemoryStore;
use crate::store::{Revocation, Revocations};

pub(super) fn revoke(
    store: &MemoryStore,
    instance_id: &str,
    revocation: Revocation<'_>,
    ttl_seconds: i64,
) {
    let key = revocation_key(instance_id, &revocation);
    let mut expiring = store.expiring();
    let current = expiring.get(&key).and_then(|v| v.parse::<i64>().ok());
    let value = match revocation {
        Revocation::Token { .. } | Revocation::Session { .. } => 1,
        Revocation::Credential { before, .. } => current.map_or(before, |c| c.min(before)),
        Revocation::Instance { before } => current.map_or(before, |c| c.max(before)),
    };
    expiring.put(key, value.to_string(), ttl_seconds);
}

pub(super) fn of_token(
    store: &MemoryStore,
    instance_id: &str,
    jti: &str,
    sid: &str,
    credential_id: &str,
) -> Revocations {
    let expiring = store.expiring();
    let time = |r: Revocation<'_>| {
        expiring
            .get(&revocation_key(instance_id, &r))
            .and_then(|v| v.parse().ok())
    };
    Revocations {
        jti: expiring
            .get(&revocation_key(instance_id, &Revocation::Token { jti }))
            .is_some(),
        sid: expiring
            .get(&revocation_key(instance_id, &Revocation::Session { sid }))
            .is_some(),
        credential_before: time(Revocation::Credential {
            id: credential_id,
            before: 0,
        }),
        instance_before: time(Revocation::Instance { before: 0 }),
    }
}

/// The first successor recorded for `jti` wins; a later refresh of the same
/// token gets that one back.
pub(super) fn remember_successor(
    store: &MemoryStore,
    instance_id: &str,
    jti: &str,
    record: &str,
    ttl_seconds: i64,
) -> String {
    let key = format!("{instance_id}/succ/{jti}");
    let mut expiring = store.expiring();
    if let Some(existing) = expiring.get(&key) {
        return existing.to_owned();
    }
    expiring.put(key, record.to_owned(), ttl_seconds);
    record.to_owned()
}

pub(super) fn successor(store: &MemoryStore, instance_id: &str, jti: &str) -> Option<String> {
    store
        .expiring()
        .get(&format!("{instance_id}/succ/{jti}"))
        .map(str::to_owned)
}
