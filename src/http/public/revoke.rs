//! `POST /v1/revoke`: logout (see `app/sessions.rs`). 200 whether or not the
//! token was still valid, so the answer tells nothing about it.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::cors;
use crate::http::extract::{ApiKeyHeader, BearerToken, OriginHeader};

#[tracing::instrument(skip_all)]
pub async fn revoke(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    BearerToken(token): BearerToken,
    OriginHeader(origin): OriginHeader,
) -> Result<HttpResponse, ApiError> {
    let done = state.logout(&api_key, &token, origin.as_deref()).await?;
    let mut response = HttpResponse::Ok();
    if let Some(origin) = &done.origin {
        cors::allow_origin(&mut response, origin);
    }
    Ok(response.json(json!({})))
}
