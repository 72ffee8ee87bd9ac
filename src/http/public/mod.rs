//! The Inbenta-compatible public API (SPEC §3).

pub mod apis;
pub mod auth;
pub mod introspect;
pub mod jwks;
pub mod refresh;
pub mod revoke;

use std::sync::Arc;

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
///
/// A credential accepted before is looked up where it lives, together with its
/// instance's epoch, in one store round trip: its status and domains are read
/// fresh every time, and the cached instance is used only while its epoch is
/// current. Anything else takes the full lookup.
pub(crate) async fn lookup(
    state: &AppState,
    api_key: &ApiKey,
    value: &str,
    kind: CredentialKind,
) -> Result<(Arc<Instance>, CredentialRecord), ApiError> {
    let hash = state.hasher.hash(value);
    let known = state.auth_credentials.get(&hash);
    let was_known = known.is_some();
    let cached = state.instances.cached_by_api_key(api_key.expose());
    let (instance, credential) = match (known, cached) {
        (Some(known), Some(cached)) if known.instance_id == cached.instance.id => {
            let (credential, epoch) = state
                .store
                .credential_with_epoch(&known.instance_id, &known.id)
                .await?;
            let instance = if epoch == cached.epoch {
                Some(cached.instance)
            } else {
                state
                    .instances
                    .by_id(state.store.as_ref(), &known.instance_id, true)
                    .await?
                    .map(|fresh| fresh.instance)
            };
            (instance, credential)
        }
        _ => {
            let (instance, credential) = tokio::try_join!(
                state
                    .instances
                    .by_api_key(state.store.as_ref(), api_key.expose(), true),
                state.store.credential_by_hash(&hash),
            )?;
            (instance.map(|i| i.instance), credential)
        }
    };
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
            if !was_known {
                state.auth_credentials.insert(credential.clone());
            }
            Ok((instance, credential))
        }
        _ => Err(ApiError::InvalidCredentials),
    }
}
