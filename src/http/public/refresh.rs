//! `POST /v1/refreshToken`: an unexpired access token for a new one in the same
//! session (see `app/sessions.rs`). No body is needed; whatever body an Inbenta
//! client sends is ignored.

use actix_web::{web, HttpResponse};

use super::token_response;
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::access::AccessToken;

#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    AccessToken(access): AccessToken,
) -> Result<HttpResponse, ApiError> {
    let issued = state.refresh(&access).await?;
    Ok(token_response(&state, &issued))
}
