use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::app::AppState;

/// `GET /.well-known/jwks.json`: every key that may have signed a live token.
#[tracing::instrument(skip_all)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.jwks())
}
