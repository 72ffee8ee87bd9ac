//! The Inbenta-compatible public API (SPEC §3).

pub mod apis;
pub mod auth;
pub mod introspect;
pub mod jwks;
pub mod refresh;
pub mod revoke;

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::json;

use crate::app::auth::IssuedToken;
use crate::app::AppState;

/// The 200 body of `/v1/auth` and `/v1/refreshToken`.
fn token_response(state: &AppState, issued: &IssuedToken) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(origin) = &issued.claims.org {
        super::cors::allow_origin(&mut response, origin);
    }
    let now = issued.now.timestamp();
    response.json(json!({
        "accessToken": issued.token,
        "expiration": issued.claims.exp,
        "expires_in": issued.claims.exp - now,
        "apis": state.apis(issued.instance.products.keys()),
        "server_time": now,
    }))
}
