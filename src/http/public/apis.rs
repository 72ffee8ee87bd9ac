use actix_web::{web, HttpResponse};
use serde_json::json;

use super::authorize_token;
use crate::error::ApiError;
use crate::http::extract::{ApiKeyHeader, BearerToken, OriginHeader};
use crate::http::AppState;

/// `GET /v1/apis`: the products of the token's instance and their URLs.
#[tracing::instrument(skip_all)]
pub async fn apis(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    BearerToken(token): BearerToken,
    OriginHeader(origin): OriginHeader,
) -> Result<HttpResponse, ApiError> {
    let (instance, _) = authorize_token(&state, &api_key, &token, origin.as_deref()).await?;
    Ok(HttpResponse::Ok().json(json!({ "apis": state.apis(instance.products.keys()) })))
}
