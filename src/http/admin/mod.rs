//! The admin API (SPEC §7): `Authorization: Bearer <admin token>` on every route,
//! enforced by the [`AdminAuth`](super::extract::AdminAuth) extractor.

pub mod domain_keys;
pub mod experiences;
pub mod instances;
pub mod reports;
pub mod revocations;
pub mod secrets;
pub mod signing_keys;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::app::audit::AuditEntry;
use crate::app::AppState;
use crate::domain::credential::CredentialKind;
use crate::domain::instance::{CredentialRecord, CredentialStatus, Instance, Product};
use crate::error::ApiError;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Serialize)]
pub struct InstanceView {
    id: String,
    name: String,
    api_key: String,
    /// The experience settings of each product, as PATCH takes them back.
    products: BTreeMap<String, serde_json::Value>,
    token_ttl_seconds: u64,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<CredentialView>,
}

impl InstanceView {
    pub fn new(instance: Instance) -> Self {
        InstanceView {
            id: instance.id,
            name: instance.name,
            api_key: instance.api_key,
            products: instance
                .products
                .iter()
                .map(|(slug, product)| (slug.clone(), product_settings(product)))
                .collect(),
            token_ttl_seconds: instance.token_ttl_seconds,
            created_at: rfc3339(instance.created_at),
            secret: None,
        }
    }
}

/// A product's settings without its internal token link.
fn product_settings(product: &Product) -> serde_json::Value {
    serde_json::json!({
        "upstream": product.upstream,
        "kind": product.kind,
        "allowed_origins": product.allowed_origins,
        "rate_limit_per_minute": product.rate_limit_per_minute,
        "daily_cap": product.daily_cap,
        "operations": product.operations,
        "pass_set_cookie": product.pass_set_cookie,
    })
}

/// A secret, domain key or experience token as operators see it: masked, with
/// the full `value` only in the response that created it.
#[derive(Debug, Serialize)]
pub struct CredentialView {
    id: String,
    masked: String,
    status: CredentialStatus,
    created_at: String,
    last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domains: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

impl CredentialView {
    pub fn new(record: &CredentialRecord, now: DateTime<Utc>) -> Self {
        let is_domain_key = record.active_at.is_some();
        CredentialView {
            id: record.id.clone(),
            masked: record.masked.clone(),
            status: record.status(now),
            created_at: rfc3339(record.created_at),
            last_used_at: record.last_used_at.map(rfc3339),
            value: None,
            domains: is_domain_key.then(|| record.domains.clone()),
            active_at: record.active_at.map(rfc3339),
            expires_at: record.expires_at.map(rfc3339),
            revoked_at: record.revoked_at.map(rfc3339),
        }
    }

    /// The one view that carries the full value.
    pub fn created(record: &CredentialRecord, value: &str, now: DateTime<Utc>) -> Self {
        CredentialView {
            value: Some(value.to_owned()),
            ..Self::new(record, now)
        }
    }
}

/// The masked views of an instance's credentials of one kind.
async fn list_views(
    state: &AppState,
    instance_id: &str,
    kind: CredentialKind,
) -> Result<Vec<CredentialView>, ApiError> {
    let records = state.list_credentials(instance_id, kind).await?;
    let now = state.now();
    Ok(records
        .iter()
        .map(|r| CredentialView::new(r, now))
        .collect())
}

/// Revokes a secret or domain key and every token it minted; audits it as
/// `action`; answers with its view.
async fn revoke_credential(
    state: &AppState,
    instance_id: &str,
    id: &str,
    kind: CredentialKind,
    action: &str,
) -> Result<CredentialView, ApiError> {
    let record = state.revoke_with_tokens(instance_id, id, kind).await?;
    state
        .admin_changed(instance_id, AuditEntry::admin(action).credential(id))
        .await;
    Ok(CredentialView::new(&record, state.now()))
}
