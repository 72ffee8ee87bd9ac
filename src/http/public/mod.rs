//! The Inbenta-compatible public API (SPEC §3).

pub mod apis;
pub mod auth;
pub mod introspect;
pub mod jwks;
pub mod refresh;
pub mod revoke;

use actix_web::http::header;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::AppState;
use crate::domain::credential::{ApiKey, CredentialKind};
use crate::domain::instance::{CredentialRecord, CredentialStatus, Instance};
use crate::error::ApiError;
use crate::tokens::Claims;

/// The 200 body of `/v1/auth` and `/v1/refreshToken`.
fn token_response(
    state: &AppState,
    instance: &Instance,
    token: String,
    claims: &Claims,
    now: DateTime<Utc>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(origin) = &claims.org {
        super::cors::allow_origin(&mut response, origin);
    }
    response.json(json!({
        "accessToken": token,
        "expiration": claims.exp,
        "expires_in": claims.exp - now.timestamp(),
        "apis": state.apis(instance.products.keys()),
        "server_time": now.timestamp(),
    }))
}

/// Finds the instance of `api_key` and the live credential `value` of `kind`
/// belonging to it, or answers the one uniform 401.
pub(crate) async fn lookup(
    state: &AppState,
    api_key: &ApiKey,
    value: &str,
    kind: CredentialKind,
) -> Result<(Instance, CredentialRecord), ApiError> {
    let hash = state.hasher.hash(value);
    let (instance, credential) = tokio::try_join!(
        state.store.instance_by_api_key(api_key.expose()),
        state.store.credential_by_hash(&hash),
    )?;
    let genuine = state
        .hasher
        .verify(value, credential.as_ref().map(|c| &c.hash));
    match (instance, credential) {
        (Some(instance), Some(credential))
            if genuine
                && credential.kind == kind
                && credential.instance_id == instance.id
                && credential.status(state.now()) != CredentialStatus::Revoked =>
        {
            Ok((instance, credential))
        }
        _ => Err(ApiError::InvalidCredentials),
    }
}
