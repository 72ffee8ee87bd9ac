use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::http::access::AccessToken;
use crate::http::cors;

/// `GET /v1/apis`: the products of the token's instance and their URLs.
#[tracing::instrument(skip_all)]
pub async fn apis(state: web::Data<AppState>, AccessToken(access): AccessToken) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(origin) = &access.claims.org {
        cors::allow_origin(&mut response, origin);
    }
    response.json(json!({ "apis": state.apis(access.instance.products.keys()) }))
}
