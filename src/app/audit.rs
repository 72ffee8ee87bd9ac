//! Audit log (SPEC §7): every admin action and every failed authentication
//! whose instance is known, newest first, bounded per instance.
//!
//! An audit write that fails is logged, not returned: the action it records has
//! already happened, and answering 503 for it would invite a retry that does it
//! twice.

use serde::Serialize;
use serde_json::Value;

use super::AppState;

/// Entries kept per instance; older ones are dropped.
pub const AUDIT_KEEP: usize = 1000;

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
    /// Records an admin change: audits it and drops the caches derived from
    /// instances and credentials (the CORS preflight index).
    pub async fn admin_changed(&self, instance_id: &str, entry: AuditEntry) {
        self.origins.invalidate();
        self.audit(instance_id, entry).await;
    }

    pub async fn audit(&self, instance_id: &str, mut entry: AuditEntry) {
        entry.at = self
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let json = match serde_json::to_string(&entry) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an audit entry");
                return;
            }
        };
        if let Err(e) = self
            .store
            .append_audit(instance_id, &json, AUDIT_KEEP)
            .await
        {
            tracing::error!(error = %e, action = %entry.action, instance = %instance_id, "audit entry lost");
        }
    }
}
