//! CORS for browsers (SPEC §3).
//!
//! A preflight carries no credentials, so it cannot be checked against the
//! credential that the real request will carry. It is answered from an index of
//! every origin some credential allows on that path: the domains of domain keys
//! (for `/v1/*`, and for `/prod/{slug}/*` of their instance's products) and the
//! `allowed_origins` of experiences (`/prod/{slug}/*`; an empty list allows
//! every origin). The real request is then checked against its own credential,
//! and its success carries `Access-Control-Allow-Origin` only for the origins
//! that credential allows; errors carry it for any origin the preflight allows,
//! so that a page can read why it was refused. The preflight is a courtesy to
//! browsers, never the security boundary.
//!
//! The index itself is [`OriginIndex`](crate::app::origin_index::OriginIndex).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse, HttpResponseBuilder, ResponseError};

use crate::app::AppState;
use crate::domain::origin::Origin;
use crate::error::ApiError;

pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
pub const ALLOWED_HEADERS: &str =
    "authorization, content-type, x-inbenta-key, x-access-token, x-request-id";
pub const EXPOSED_HEADERS: &str = "ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after, deprecation, sunset, x-request-id";

/// Adds `Access-Control-Allow-Origin` for an origin the credential allowed
/// (and `Vary: Origin` beside any `Vary` already there).
pub fn allow_origin(response: &mut HttpResponseBuilder, origin: &str) {
    response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin));
    response.insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS));
    response.append_header((header::VARY, "Origin"));
}

/// The same on a finished response (for errors after the origin was allowed).
pub fn allow_origin_on<B>(response: &mut HttpResponse<B>, origin: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Answers preflights on `/v1/*` and `/prod/*` before routing; everything else
/// passes through.
pub async fn preflight(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let path = req.path();
    let is_preflight = req.method() == Method::OPTIONS
        && (path.starts_with("/v1/") || path.starts_with("/prod/"))
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !is_preflight {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let mut response = next.call(req).await?;
        readable_error(state, &mut response).await;
        return Ok(response.map_into_left_body());
    }
    let response = answer(&req).await;
    Ok(req.into_response(response).map_into_right_body())
}

/// A refusal decided before the credential's own origin check (an expired
/// token, say) would reach the page as an opaque CORS failure, and the page
/// could not tell that it should refresh. Error responses on `/v1/*` and
/// `/prod/*` therefore carry `Access-Control-Allow-Origin` for an origin the
/// preflight would have allowed on that path. Error bodies carry nothing an
/// origin could not already learn from the status code.
async fn readable_error<B>(state: Option<web::Data<AppState>>, response: &mut ServiceResponse<B>) {
    let (Some(state), true) = (state, response.status().as_u16() >= 400) else {
        return;
    };
    let request = response.request();
    let path = request.path();
    if !(path.starts_with("/v1/") || path.starts_with("/prod/"))
        || response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        return;
    }
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Origin>().ok())
    else {
        return;
    };
    let allowed = state
        .origins
        .allows(state.store.as_ref(), path, &origin)
        .await;
    if allowed.unwrap_or(false) {
        let origin = origin.to_string();
        allow_origin_on(response.response_mut(), &origin);
    }
}

async fn answer(req: &ServiceRequest) -> HttpResponse {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return ApiError::internal(std::io::Error::other("application state is missing"))
            .error_response();
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Origin>().ok());
    let Some(origin) = origin else {
        return ApiError::OriginNotAllowed.error_response();
    };
    match state
        .origins
        .allows(state.store.as_ref(), req.path(), &origin)
        .await
    {
        Ok(true) => {}
        Ok(false) => return ApiError::OriginNotAllowed.error_response(),
        Err(e) => return ApiError::from(e).error_response(),
    }
    let origin = origin.to_string();
    let mut response = HttpResponse::NoContent();
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
        .insert_header((
            header::ACCESS_CONTROL_MAX_AGE,
            state.web.cors_max_age_seconds.to_string(),
        ))
        .insert_header((
            header::VARY,
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ));
    response.finish()
}
