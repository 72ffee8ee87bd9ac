//! `POST /v1/revoke`: logout. Revokes the presented token and its session (the
//! whole refresh family), RFC 7009 style: 200 whether or not the token was
//! still valid, so the answer tells nothing about it.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::http::access::check_origin;
use crate::http::extract::{ApiKeyHeader, BearerToken, OriginHeader};
use crate::http::{cors, AppState};
use crate::store::Revocation;

#[tracing::instrument(skip_all)]
pub async fn revoke(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    BearerToken(token): BearerToken,
    OriginHeader(origin): OriginHeader,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let Ok(claims) = state.tokens.verify(&token, now) else {
        return Ok(HttpResponse::Ok().json(json!({})));
    };
    let mut response = HttpResponse::Ok();
    // A browser logging out from the token's own origin may read the answer.
    if let Some(org) = &claims.org {
        if check_origin(&claims, origin.as_deref()).is_ok() {
            cors::allow_origin(&mut response, org);
        }
    }
    let instance_id = state.store.instance_id_by_api_key(api_key.expose()).await?;
    if instance_id.is_some_and(|id| id == claims.sub) {
        let session_end = claims
            .auth_time
            .saturating_add(i64::try_from(state.max_session_seconds).unwrap_or(0));
        state
            .revoke(
                &claims.sub,
                Revocation::Token { jti: &claims.jti },
                claims.exp,
            )
            .await?;
        state
            .revoke(
                &claims.sub,
                Revocation::Session { sid: &claims.sid },
                session_end,
            )
            .await?;
        tracing::info!(instance = %claims.sub, "token and session revoked by their holder");
    }
    Ok(response.json(json!({})))
}
