//! `POST /v1/refreshToken`: an unexpired access token for a new one in the same
//! session (new `jti`, same `sid`). No body is needed; whatever body an Inbenta
//! client sends is ignored.
//!
//! Within `tokens.refresh_reuse_seconds` the same presented token gets the same
//! successor, so two browser tabs refreshing at once both keep a valid token.
//! The successor is stored with `SET NX`: when two refreshes race, the loser
//! answers with the winner's token.

use actix_web::{web, HttpResponse};

use super::token_response;
use crate::domain::instance::CredentialStatus;
use crate::error::ApiError;
use crate::http::access::AccessToken;
use crate::http::AppState;
use crate::tokens::TokenRequest;

#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    AccessToken(access): AccessToken,
) -> Result<HttpResponse, ApiError> {
    let (instance, claims) = (&access.instance, &access.claims);
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

    let reuse = i64::try_from(state.refresh_reuse_seconds).unwrap_or(0);
    if reuse > 0 {
        if let Some(token) = state.store.successor(&instance.id, &claims.jti).await? {
            let successor = state.tokens.verify(&token, now)?;
            return Ok(token_response(&state, instance, token, &successor, now));
        }
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
    if reuse > 0 {
        let kept = state
            .store
            .remember_successor(&instance.id, &claims.jti, &token, reuse)
            .await?;
        if kept != token {
            let winner = state.tokens.verify(&kept, now)?;
            return Ok(token_response(&state, instance, kept, &winner, now));
        }
    }
    state.metrics.token_refreshed();
    Ok(token_response(&state, instance, token, &new_claims, now))
}
