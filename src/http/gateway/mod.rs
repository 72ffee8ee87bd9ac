//! The product gateway (SPEC §4) over HTTP: `ANY /prod/{product}/{path…}`
//! checks the caller and proxies to the product's upstream; `GET /v1/verify`
//! runs the same checks for a reverse proxy's sub-request (nginx
//! `auth_request`, Traefik ForwardAuth) and proxies nothing.
//!
//! This module reads what a request presents, hands it to
//! [`check_product_request`] (`app/gateway.rs`, where the checks
//! and their order live) and writes the identity, rate-limit, CORS and
//! deprecation headers of the answer.

pub mod proxy;
mod resolve;
pub mod verify;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::access::presented;
use super::cors;
use super::extract::{app_state, client_ip};
use crate::app::gateway::{
    check_product_request, is_experience_token, ProductAccess, ProductRequest, Refusal,
};
use crate::app::AppState;
use crate::domain::experience::operation_of;
use crate::domain::path::{check_path, split_gateway_path, split_original_uri};
use crate::error::ApiError;

/// Headers the gateway adds for the upstream; callers can never set them.
pub const IDENTITY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-keybroker-instance"),
    HeaderName::from_static("x-keybroker-subject-kind"),
    HeaderName::from_static("x-keybroker-token-id"),
];

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The identity headers and their values.
pub fn identity(access: &ProductAccess) -> [(HeaderName, &str); 3] {
    let [instance, kind, token_id] = IDENTITY_HEADERS;
    [
        (instance, access.instance.id.as_str()),
        (kind, access.kind()),
        (token_id, access.token_id()),
    ]
}

/// Rate-limit, CORS and deprecation headers for the caller.
pub fn decorate(access: &ProductAccess, response: &mut HttpResponseBuilder) {
    let rate = &access.rate;
    response.insert_header((RATELIMIT_LIMIT, HeaderValue::from(rate.limit)));
    response.insert_header((RATELIMIT_REMAINING, HeaderValue::from(rate.remaining)));
    response.insert_header((RATELIMIT_RESET, HeaderValue::from(rate.reset_seconds)));
    if let Some(origin) = &access.origin {
        cors::allow_origin(response, origin);
    }
    if let Some(sunset) = access.sunset {
        response.insert_header(("Deprecation", "true"));
        response.insert_header((
            "Sunset",
            sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ));
    }
}

fn header_text(req: &HttpRequest, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        req.headers()
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The product and path tail a request names, and whether the path is free
/// of dot segments. The whole path is checked: behind a reverse proxy,
/// `/search/../chat/x` names `search` here but reaches `chat` upstream.
///
/// `/v1/verify` reads the original URI from the one configured header
/// (`verify.uri_header`). Proxies such as Traefik pass the client's own
/// headers through, so falling back to another spelling would let a caller
/// name the product it is checked for.
fn target(req: &HttpRequest, state: &AppState) -> (Option<(String, String)>, bool) {
    if req.path().starts_with("/prod/") {
        let target = split_gateway_path(req.path());
        let ok = target.is_none_or(|(_, rest)| check_path(rest).is_ok());
        (target.map(|(p, rest)| (p.to_owned(), rest.to_owned())), ok)
    } else {
        let uri = header_text(req, &[state.verify.uri_header.as_str()]);
        let path = uri
            .as_deref()
            .map(|u| u.split(['?', '#']).next().unwrap_or(""));
        let ok = path.is_none_or(|p| check_path(p).is_ok());
        let target = uri
            .as_deref()
            .and_then(split_original_uri)
            .map(|(p, rest)| (p.to_owned(), rest.to_owned()));
        (target, ok)
    }
}

impl FromRequest for ProductAccess {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = match app_state(req) {
            Ok(state) => state,
            Err(missing) => return Box::pin(async move { Err(missing.into()) }),
        };
        let (target, path_ok) = target(req, &state);
        if !path_ok {
            return Box::pin(async { Err(ApiError::InvalidPath.into()) });
        }
        let (product, operation) = match target {
            Some((p, rest)) => (Some(p), Some(operation_of(&rest).to_owned())),
            None => (None, None),
        };
        let mut presented = presented(req);
        presented.operation = operation;
        let experience_token = header_text(req, &["x-access-token"]).or_else(|| {
            presented
                .token
                .as_ref()
                .filter(|t| is_experience_token(t))
                .cloned()
        });
        let request = ProductRequest {
            experience_token,
            presented,
            product,
            ip: client_ip(req, &state),
        };
        Box::pin(async move {
            check_product_request(&state, request)
                .await
                .map_err(refusal_response)
        })
    }
}

/// A refusal after the caller's origin was allowed keeps its CORS headers, so
/// a browser can read it.
fn refusal_response(refusal: Refusal) -> actix_web::Error {
    let Some(origin) = refusal.origin else {
        return refusal.error.into();
    };
    let mut response = refusal.error.error_response();
    cors::allow_origin_on(&mut response, &origin);
    InternalError::from_response(refusal.error, response).into()
}

/// An error answered after the caller's origin was allowed keeps its CORS
/// headers, so a browser can read it.
pub fn error_for(access: &ProductAccess, error: ApiError) -> HttpResponse {
    let mut response = error.error_response();
    if let Some(origin) = &access.origin {
        cors::allow_origin_on(&mut response, origin);
    }
    response
}
