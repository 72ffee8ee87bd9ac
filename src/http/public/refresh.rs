//! `POST /v1/refreshToken`: an unexpired access token for a new one in the same
//! session (new `jti`, same `sid`). No body is needed; whatever body an Inbenta
//! client sends is ignored.
//!
//! Within `tokens.refresh_reuse_seconds` the same presented token gets the same
//! successor, so two browser tabs refreshing at once both keep a valid token.
//! The store keeps only the successor's `jti`, `iat` and `exp` (with `SET NX`:
//! when two refreshes race, the loser answers with the winner's); the token is
//! signed again from them, and Ed25519 signatures are deterministic, so it is
//! the same token. No bearer token is ever stored.

use actix_web::{web, HttpResponse};

use super::token_response;
use crate::domain::instance::CredentialStatus;
use crate::domain::instance::Instance;
use crate::error::ApiError;
use crate::http::access::{check_revocations, AccessToken};
use crate::http::AppState;
use crate::tokens::{Claims, TokenRequest};

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
    // Revoking a credential also lists its tokens as revoked; this check
    // still holds if that second write never happened. Both reads go out
    // together.
    let reuse = i64::try_from(state.refresh_reuse_seconds).unwrap_or(0);
    let (credential, kept) = tokio::try_join!(
        state.store.get_credential(&instance.id, &claims.cred),
        async {
            if reuse > 0 {
                state.store.successor(&instance.id, &claims.jti).await
            } else {
                Ok(None)
            }
        },
    )?;
    let alive = credential.is_some_and(|c| c.status(now) != CredentialStatus::Revoked);
    if !alive {
        return Err(ApiError::CredentialRevoked);
    }
    if let Some(kept) = kept {
        return answer_with_kept(&state, instance, claims, &kept).await;
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
        let ours = successor_record(&new_claims);
        let kept = state
            .store
            .remember_successor(&instance.id, &claims.jti, &ours, reuse)
            .await?;
        if kept != ours {
            return answer_with_kept(&state, instance, claims, &kept).await;
        }
    }
    state.metrics.token_refreshed();
    Ok(token_response(&state, instance, token, &new_claims, now))
}

/// What the store keeps of a successor: `jti iat exp`.
fn successor_record(claims: &Claims) -> String {
    format!("{} {} {}", claims.jti, claims.iat, claims.exp)
}

/// Signs the kept successor again (the same token) unless it was revoked since.
async fn answer_with_kept(
    state: &AppState,
    instance: &Instance,
    presented: &Claims,
    kept: &str,
) -> Result<HttpResponse, ApiError> {
    let mut parts = kept.split(' ');
    let (Some(jti), Some(iat), Some(exp)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::internal(std::io::Error::other(
            "malformed successor record",
        )));
    };
    let parse = |v: &str| v.parse::<i64>().map_err(ApiError::internal);
    let successor = Claims {
        jti: jti.to_owned(),
        iat: parse(iat)?,
        nbf: parse(iat)?,
        exp: parse(exp)?,
        ..presented.clone()
    };
    check_revocations(state, &successor).await?;
    let token = state.tokens.sign(&successor).map_err(ApiError::internal)?;
    Ok(token_response(
        state,
        instance,
        token,
        &successor,
        state.now(),
    ))
}
