//! HTTP routes, grouped by audience: `public` (the Inbenta-compatible API),
//! `admin` (operators), `ops` (health and metrics) and `sdk` (the embedded
//! browser and Node SDK), `console` (the embedded admin console).

pub mod access;
pub mod admin;
pub mod console;
pub mod cors;
pub mod extract;
pub mod gateway;
pub mod ops;
pub mod public;
pub mod sdk;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse, ResponseError};

use crate::error::ApiError;

/// Registers each path with its methods, answers other methods with a JSON 405
/// that lists them in `Allow`, and lists every (method, path) in [`ROUTES`]
/// so that a test can hold `openapi.yaml` to the router.
macro_rules! routes {
    ($( $path:literal => { $( $method:ident : $handler:path ),+ $(,)? } ),* $(,)?) => {
        /// Every route the router serves, as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )* ];

        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                let allow = [$( stringify!($method) ),+].join(", ");
                cfg.service(
                    web::resource($path)
                        $( .route(route_for(stringify!($method)).to($handler)) )+
                        .default_service(web::to(move || method_not_allowed(allow.clone()))),
                );
            )*
        }
    };
}

/// `ANY` matches every method; others are the HTTP method of that name.
fn route_for(method: &str) -> actix_web::Route {
    match actix_web::http::Method::from_bytes(method.as_bytes()) {
        Ok(m) if method != "ANY" => web::method(m),
        _ => web::route(),
    }
}

routes! {
    "/v1/auth" => { POST: public::auth::auth },
    "/v1/refreshToken" => { POST: public::refresh::refresh },
    "/v1/apis" => { GET: public::apis::apis },
    "/v1/revoke" => { POST: public::revoke::revoke },
    "/v1/introspect" => { POST: public::introspect::introspect },
    "/v1/verify" => { GET: gateway::verify::verify },
    "/prod/{product}/{path:.*}" => { ANY: gateway::proxy::forward },
    "/.well-known/jwks.json" => { GET: public::jwks::jwks },
    "/admin/v1/signing-keys" => { GET: admin::signing_keys::list },
    "/admin/v1/signing-keys/rotate" => { POST: admin::signing_keys::rotate },
    "/admin/v1/instances" => {
        POST: admin::instances::create,
        GET: admin::instances::list,
    },
    "/admin/v1/instances/{id}" => {
        GET: admin::instances::get,
        PATCH: admin::instances::update,
        DELETE: admin::instances::delete,
    },
    "/admin/v1/instances/{id}/experiences" => {
        POST: admin::experiences::create,
        GET: admin::experiences::list,
    },
    "/admin/v1/instances/{id}/experiences/{slug}" => {
        GET: admin::experiences::get,
        PATCH: admin::experiences::update,
        DELETE: admin::experiences::delete,
    },
    "/admin/v1/instances/{id}/experiences/{slug}/regenerate-token" => {
        POST: admin::experiences::regenerate_token,
    },
    "/admin/v1/instances/{id}/usage" => { GET: admin::reports::usage },
    "/admin/v1/instances/{id}/usage/series" => { GET: admin::reports::usage_series },
    "/admin/v1/instances/{id}/audit" => { GET: admin::reports::audit },
    "/admin/v1/instances/{id}/revoke-tokens" => {
        POST: admin::revocations::revoke_tokens,
    },
    "/admin/v1/instances/{id}/secrets" => {
        POST: admin::secrets::create,
        GET: admin::secrets::list,
    },
    "/admin/v1/instances/{id}/secrets/{secret_id}" => {
        DELETE: admin::secrets::revoke,
    },
    "/admin/v1/instances/{id}/secrets/{secret_id}/rotate" => {
        POST: admin::secrets::rotate,
    },
    "/admin/v1/instances/{id}/domain-keys" => {
        POST: admin::domain_keys::create,
        GET: admin::domain_keys::list,
    },
    "/admin/v1/instances/{id}/domain-keys/{key_id}" => {
        PATCH: admin::domain_keys::update,
        DELETE: admin::domain_keys::revoke,
    },
    "/healthz" => { GET: ops::healthz },
    "/readyz" => { GET: ops::readyz },
    "/metrics" => { GET: ops::metrics },
    "/sdk/keybroker.js" => { GET: sdk::keybroker_js },
    "/sdk/keybroker.d.ts" => { GET: sdk::keybroker_d_ts },
    "/console" => { GET: console::index },
    "/console/{file}" => { GET: console::file },
}

/// RFC 9110 §15.5.6: a 405 names the methods the path takes.
async fn method_not_allowed(allow: String) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed.error_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
