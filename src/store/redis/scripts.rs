//! The Lua scripts, one file each under `scripts/` so that they read and lint
//! as Lua; each file's header says what its KEYS and ARGV are and what it
//! returns. Every key a script touches carries the same hash tag (see
//! `keys.rs`), so each stays within one cluster slot.

use redis::{Cmd, Script};

pub(super) const UPDATE_FIELD: &str = include_str!("scripts/update_field.lua");
pub(super) const REVOKE_AT: &str = include_str!("scripts/revoke_at.lua");
pub(super) const UPDATE_INSTANCE: &str = include_str!("scripts/update_instance.lua");
pub(super) const RING_BOOTSTRAP: &str = include_str!("scripts/ring_bootstrap.lua");

/// Every script, hashed once per store: invoked by hash (`EVALSHA`), and
/// loaded into Redis when it does not know the hash yet.
#[derive(Clone)]
pub(super) struct Scripts {
    pub update_field: Script,
    pub hit: Script,
    pub add_usage: Script,
    pub append_audit: Script,
    pub gateway_check: Script,
    pub lease: Script,
    pub heartbeat: Script,
}

impl Scripts {
    pub fn load() -> Self {
        Scripts {
            update_field: Script::new(UPDATE_FIELD),
            hit: Script::new(include_str!("scripts/hit.lua")),
            add_usage: Script::new(include_str!("scripts/add_usage.lua")),
            append_audit: Script::new(include_str!("scripts/append_audit.lua")),
            gateway_check: Script::new(concat!(
                include_str!("scripts/read_caller.lua"),
                include_str!("scripts/gateway_check.lua")
            )),
            lease: Script::new(concat!(
                include_str!("scripts/read_caller.lua"),
                include_str!("scripts/lease.lua")
            )),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
        }
    }
}

/// A script as one `EVAL` command, for the durable writes (`durable.rs`),
/// which send it in a pipeline; the caller adds its ARGV.
pub(super) fn eval(source: &'static str, keys: &[String]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source).arg(keys.len()).arg(keys);
    cmd
}
