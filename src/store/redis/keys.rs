//! Key names (the layout is tabled in the module doc of `redis/mod.rs`). Every
//! key about one instance carries its id as a hash tag, `{<instance>}`, so that
//! a script touching several of them stays in one cluster slot.

use super::RedisStore;
use crate::domain::credential::CredentialHash;
use crate::store::Revocation;

/// Fields of a credential hash: the record as created, and the mutable fields
/// updated one at a time over it. `scripts/gateway_check.lua` reads the first
/// three by name.
pub(super) const FIELD_RECORD: &str = "record";
pub(super) const FIELD_REVOKED: &str = "revoked_at";
pub(super) const FIELD_EXPIRES: &str = "expires_at";
pub(super) const FIELD_DOMAINS: &str = "domains";
pub(super) const FIELD_LAST_USED: &str = "last_used_at";

impl RedisStore {
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where every revocation is announced, with its instance id as payload.
    pub(super) fn revocations_channel(&self) -> String {
        format!("{}:revocations", self.prefix)
    }

    /// Where the processes following the feed acknowledge the announcements
    /// of process `process_id` (see `heartbeat.rs`).
    pub(super) fn ack_channel(&self, process_id: &str) -> String {
        format!("{}:ack:{process_id}", self.prefix)
    }

    /// The heartbeat registry of live processes; its own hash tag, since it
    /// is about no instance.
    pub(super) fn processes_key(&self) -> String {
        format!("{}:{{procs}}:live", self.prefix)
    }

    /// The signing-key ring, kid → entry.
    pub(super) fn ring_key(&self) -> String {
        format!("{}:{{ring}}:keys", self.prefix)
    }

    /// The audit log of ring changes.
    pub(super) fn ring_audit_key(&self) -> String {
        format!("{}:{{ring}}:audit", self.prefix)
    }

    pub(super) fn instances_key(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    pub(super) fn api_key_key(&self, api_key: &str) -> String {
        format!("{}:apikey:{api_key}", self.prefix)
    }

    pub(super) fn hash_key(&self, hash: &CredentialHash) -> String {
        format!("{}:credhash:{}", self.prefix, hash.as_str())
    }

    pub(super) fn instance_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:instance", self.prefix)
    }

    pub(super) fn epoch_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:epoch", self.prefix)
    }

    pub(super) fn creds_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:creds", self.prefix)
    }

    pub(super) fn cred_key(&self, instance_id: &str, id: &str) -> String {
        format!("{}:{{{instance_id}}}:cred:{id}", self.prefix)
    }

    pub(super) fn revocation_key(&self, instance_id: &str, revocation: &Revocation<'_>) -> String {
        let p = &self.prefix;
        match revocation {
            Revocation::Token { jti } => format!("{p}:{{{instance_id}}}:rev:jti:{jti}"),
            Revocation::Session { sid } => format!("{p}:{{{instance_id}}}:rev:sid:{sid}"),
            Revocation::Credential { id, .. } => format!("{p}:{{{instance_id}}}:rev:cred:{id}"),
            Revocation::Instance { .. } => format!("{p}:{{{instance_id}}}:rev:all"),
        }
    }

    pub(super) fn counter_key(&self, scope: Option<&str>, suffix: &str) -> String {
        match scope {
            Some(instance_id) => format!("{}:{{{instance_id}}}:rl:{suffix}", self.prefix),
            // One hash tag for every counter not about one instance, so that a
            // script counting several of them stays in one cluster slot.
            None => format!("{}:{{global}}:rl:{suffix}", self.prefix),
        }
    }

    pub(super) fn usage_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:usage", self.prefix)
    }

    /// One step of the usage series; `start` is its first unix second.
    pub(super) fn usage_series_key(&self, instance_id: &str, step: &str, start: i64) -> String {
        format!("{}:{{{instance_id}}}:useries:{step}:{start}", self.prefix)
    }

    pub(super) fn audit_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:audit", self.prefix)
    }

    pub(super) fn successor_key(&self, instance_id: &str, jti: &str) -> String {
        format!("{}:{{{instance_id}}}:succ:{jti}", self.prefix)
    }
}
