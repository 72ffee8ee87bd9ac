//! The Lua scripts, one file each under `scripts/` so that they read and lint
//! as Lua; each file's header says what its KEYS and ARGV are and what it
//! returns. Every key a script touches carries the same hash tag (see
//! `keys.rs`), so each stays within one cluster slot.

use redis::Script;

/// Every script, hashed once per store: invoked by hash (`EVALSHA`), and
/// loaded into Redis when it does not know the hash yet.
#[derive(Clone)]
pub(super) struct Scripts {
    pub update_field: Script,
    pub revoke_at: Script,
    pub hit: Script,
    pub add_usage: Script,
    pub append_audit: Script,
    pub update_instance: Script,
    pub gateway_check: Script,
    pub ring_bootstrap: Script,
    pub lease: Script,
    pub heartbeat: Script,
}

impl Scripts {
    pub fn load() -> Self {
        Scripts {
            update_field: Script::new(include_str!("scripts/update_field.lua")),
            revoke_at: Script::new(include_str!("scripts/revoke_at.lua")),
            hit: Script::new(include_str!("scripts/hit.lua")),
            add_usage: Script::new(include_str!("scripts/add_usage.lua")),
            append_audit: Script::new(include_str!("scripts/append_audit.lua")),
            update_instance: Script::new(include_str!("scripts/update_instance.lua")),
            gateway_check: Script::new(include_str!("scripts/gateway_check.lua")),
            ring_bootstrap: Script::new(include_str!("scripts/ring_bootstrap.lua")),
            lease: Script::new(include_str!("scripts/lease.lua")),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
        }
    }
}
