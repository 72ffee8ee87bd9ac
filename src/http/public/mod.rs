//! The Inbenta-compatible public API (SPEC §3).

pub mod apis;
pub mod auth;
pub mod jwks;
pub mod refresh;

use actix_web::http::header;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::AppState;
use crate::domain::credential::ApiKey;
use crate::domain::instance::Instance;
use crate::domain::origin::Origin;
use crate::error::ApiError;
use crate::tokens::{Claims, TokenKind};

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
        response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()));
        response.insert_header((header::VARY, "Origin"));
    }
    response.json(json!({
        "accessToken": token,
        "expiration": claims.exp,
        "expires_in": claims.exp - now.timestamp(),
        "apis": state.apis(instance.products.keys()),
        "server_time": now.timestamp(),
    }))
}

/// Verifies a presented access token for the instance of `api_key`: signature
/// and claims, then instance, then the Origin rules of its kind. Returns the
/// instance and the claims.
async fn authorize_token(
    state: &AppState,
    api_key: &ApiKey,
    token: &str,
    origin: Option<&str>,
) -> Result<(Instance, Claims), ApiError> {
    let now = state.now();
    let claims = state.tokens.verify(token, now)?;
    let instance = state
        .store
        .instance_by_api_key(api_key.expose())
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    if claims.sub != instance.id {
        return Err(ApiError::InstanceMismatch);
    }
    check_token_origin(&claims, origin)?;
    Ok((instance, claims))
}

/// A browser token is valid only from the Origin it was minted for; a server
/// token never from a browser.
pub fn check_token_origin(claims: &Claims, origin: Option<&str>) -> Result<(), ApiError> {
    match (claims.kind, origin) {
        (TokenKind::Server, None) => Ok(()),
        (TokenKind::Server, Some(_)) => Err(ApiError::SecretFromBrowser),
        (TokenKind::Browser, None) => Err(ApiError::OriginNotAllowed),
        (TokenKind::Browser, Some(raw)) => {
            let presented = raw
                .parse::<Origin>()
                .map_err(|_| ApiError::OriginNotAllowed)?;
            if Some(presented.to_string().as_str()) == claims.org.as_deref() {
                Ok(())
            } else {
                Err(ApiError::OriginNotAllowed)
            }
        }
    }
}
