//! `POST /v1/refreshToken`: an unexpired access token for a new one in the same
//! session (new `jti`, same `sid`). No body is needed; whatever body an Inbenta
//! client sends is ignored.

use actix_web::{web, HttpResponse};

use super::{authorize_token, token_response};
use crate::domain::instance::CredentialStatus;
use crate::error::ApiError;
use crate::http::extract::{ApiKeyHeader, BearerToken, OriginHeader};
use crate::http::AppState;
use crate::tokens::TokenRequest;

#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    BearerToken(token): BearerToken,
    OriginHeader(origin): OriginHeader,
) -> Result<HttpResponse, ApiError> {
    let (instance, claims) = authorize_token(&state, &api_key, &token, origin.as_deref()).await?;
    let now = state.now();

    let max_session = i64::try_from(state.max_session_seconds).unwrap_or(i64::MAX);
    let session_ends_at = claims.auth_time.saturating_add(max_session);
    if session_ends_at <= now.timestamp() {
        return Err(ApiError::SessionExpired);
    }
    let credential = state
        .store
        .get_credential(&instance.id, &claims.cred)
        .await?;
    let alive = credential.is_some_and(|c| c.status(now) != CredentialStatus::Revoked);
    if !alive {
        return Err(ApiError::CredentialRevoked);
    }

    let ttl = i64::try_from(instance.token_ttl_seconds).unwrap_or(i64::MAX);
    let (token, new_claims) = state
        .tokens
        .issue(
            TokenRequest {
                instance_id: &instance.id,
                credential_id: &claims.cred,
                kind: claims.kind,
                origin: claims.org.clone(),
                session: Some((&claims.sid, claims.auth_time)),
                ttl_seconds: ttl,
                session_ends_at: Some(session_ends_at),
            },
            now,
        )
        .map_err(ApiError::internal)?;
    state.metrics.token_refreshed();
    Ok(token_response(&state, &instance, token, &new_claims, now))
}
