//! `POST /admin/v1/signing-keys/rotate` and `GET /admin/v1/signing-keys`
//! (SPEC §12). Private keys never leave the store, and only sealed there.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::keyring::RingError;
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};
use crate::store::StoreError;

/// Audit entries the listing shows, newest first.
const AUDIT_SHOWN: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    publish_lead_seconds: Option<u64>,
    #[serde(default)]
    immediate: bool,
}

/// The longest publish lead accepted: a key that signs a year from now is a
/// typo.
const MAX_LEAD_SECONDS: u64 = 365 * 86_400;

#[tracing::instrument(skip_all)]
pub async fn rotate(
    _: AdminAuth,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<Rotate>,
) -> Result<HttpResponse, ApiError> {
    let lead = body
        .publish_lead_seconds
        .unwrap_or(state.signing.publish_lead_seconds);
    if lead > MAX_LEAD_SECONDS {
        return Err(ApiError::InvalidRequest(format!(
            "publish_lead_seconds must be at most {MAX_LEAD_SECONDS}"
        )));
    }
    if body.immediate && body.publish_lead_seconds.is_some_and(|l| l > 0) {
        return Err(ApiError::InvalidRequest(
            "an immediate rotation has no publish lead: send one or the other".into(),
        ));
    }
    let rotation = state
        .rotate_signing_key(lead, body.immediate)
        .await
        .map_err(ring_error)?;
    tracing::info!(kid = %rotation.kid, immediate = body.immediate, lead, "signing key rotated");
    Ok(HttpResponse::Ok().json(json!({
        "kid": rotation.kid,
        "immediate": body.immediate,
        "revoked": rotation.revoked,
        "keys": rotation.keys,
    })))
}

#[tracing::instrument(skip_all)]
pub async fn list(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The store is the record: read it rather than what this process last heard.
    state.reload_ring().await.map_err(ring_error)?;
    let raw = state.store.ring_audit(AUDIT_SHOWN).await?;
    let audit: Vec<Value> = raw
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "keys": state.signing_keys(),
        "audit": audit,
    })))
}

/// A ring the store cannot give or that does not parse is the store's
/// failure (503, logged with its cause); anything else is ours (500).
fn ring_error(e: RingError) -> ApiError {
    match e {
        RingError::Store(e) => e.into(),
        RingError::Corrupt(what) => StoreError::Corrupt(format!("signing-key ring: {what}")).into(),
        other => ApiError::internal(other),
    }
}
