//! Audit log (SPEC §7): every admin action and every failed authentication
//! whose instance is known, newest first, bounded per instance.
//!
//! An audit write that fails is logged, not returned: the action it records has
//! already happened, and answering 503 for it would invite a retry that does it
//! twice.
//!
//! Entries about clients (failed authentications) are written off the request
//! path: they wait in a per-process buffer, written with the usage counters
//! every second, before any admin entry and before the log is read. So a wrong
//! secret costs the same time whether or not its API key names an instance
//! with an audit log, and the log keeps its order as seen by this process.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::propagation::Propagation;
use super::AppState;
use crate::store::Store;

/// Entries kept per instance; older ones are dropped.
pub const AUDIT_KEEP: usize = 1000;

/// Client entries waiting to be written; past this many (a flood of failures
/// with the store away), new ones are dropped and counted in the log.
pub const AUDIT_PENDING_MAX: usize = 10_000;

/// Client entries not written yet, as (instance id, JSON).
#[derive(Debug, Default)]
pub struct AuditBuffer {
    pending: Mutex<Vec<(String, String)>>,
}

impl AuditBuffer {
    fn push(&self, instance_id: &str, json: String) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= AUDIT_PENDING_MAX {
            tracing::warn!(instance = %instance_id, "audit buffer full: a client entry was dropped");
            return;
        }
        pending.push((instance_id.to_owned(), json));
    }

    /// Writes every waiting entry, oldest first.
    pub async fn flush(&self, store: &dyn Store) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (instance_id, json) in pending {
            if let Err(e) = store.append_audit(&instance_id, &json, AUDIT_KEEP).await {
                tracing::error!(error = %e, instance = %instance_id, "audit entry lost");
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    at: String,
    actor: &'static str,
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Value>,
}

impl AuditEntry {
    fn new(actor: &'static str, action: &str) -> Self {
        AuditEntry {
            at: String::new(),
            actor,
            action: action.to_owned(),
            target: None,
            credential_id: None,
            ip: None,
            reason: None,
            detail: None,
        }
    }

    /// An action taken through the admin API.
    pub fn admin(action: &str) -> Self {
        Self::new("admin", action)
    }

    /// An action taken on the command line (`keybroker keys …`).
    pub fn command_line(action: &str) -> Self {
        Self::new("cli", action)
    }

    /// The entry as stored, dated `at`.
    pub fn stamped_at(&self, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let mut entry = self.clone();
        entry.at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        serde_json::to_string(&entry)
            .map_err(|e| tracing::error!(error = %e, "cannot serialise an audit entry"))
            .ok()
    }

    /// Something a client of the public API did (a failed authentication).
    pub fn client(action: &str) -> Self {
        Self::new("client", action)
    }

    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    pub fn credential(mut self, id: &str) -> Self {
        self.credential_id = Some(id.to_owned());
        self
    }

    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = Some(ip.to_owned());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl AppState {
    /// Records an admin change: audits it and updates what is derived from
    /// the instance and its credentials (the CORS preflight index).
    ///
    /// First waits until every live process has applied the change (see
    /// `propagation.rs`), so that the answer comes after it holds everywhere;
    /// returns how far it got.
    pub async fn admin_changed(&self, instance_id: &str, entry: AuditEntry) -> Propagation {
        let propagation = self.propagate(instance_id).await;
        self.origins
            .refresh_instance(self.store.as_ref(), instance_id)
            .await;
        self.audit(instance_id, entry).await;
        propagation
    }

    /// Writes an admin entry now, after the client entries waiting.
    pub async fn audit(&self, instance_id: &str, entry: AuditEntry) {
        let Some(json) = self.stamped(&entry) else {
            return;
        };
        self.audit_buffer.flush(self.store.as_ref()).await;
        if let Err(e) = self
            .store
            .append_audit(instance_id, &json, AUDIT_KEEP)
            .await
        {
            tracing::error!(error = %e, action = %entry.action, instance = %instance_id, "audit entry lost");
        }
    }

    /// Queues a client entry; it is written within a second (see the module
    /// doc).
    pub fn audit_later(&self, instance_id: &str, entry: AuditEntry) {
        if let Some(json) = self.stamped(&entry) {
            self.audit_buffer.push(instance_id, json);
        }
    }

    /// The entry as stored, with the time it happened.
    fn stamped(&self, entry: &AuditEntry) -> Option<String> {
        entry.stamped_at(self.now())
    }
}
