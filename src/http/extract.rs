//! Extractors: authorization and input parsing happen here, in the handler's
//! signature, so that a handler cannot forget a check.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::app::access::parse_api_key;
use crate::app::AppState;
use crate::domain::credential::ApiKey;
use crate::error::ApiError;

/// The application state of a request (always there once `startup` built it).
pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("application state is missing")))
}

/// The `x-inbenta-key` header, parsed. A malformed key is refused like an
/// unknown one, before any store lookup.
#[derive(Debug)]
pub struct ApiKeyHeader(pub ApiKey);

impl FromRequest for ApiKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req.headers().get("x-inbenta-key");
        // A header that is not text cannot be a key: refused like a malformed one.
        let raw = header.map(|v| v.to_str().unwrap_or(""));
        ready(parse_api_key(raw).map(ApiKeyHeader))
    }
}

/// `Authorization: Bearer <token>`, required.
#[derive(Debug)]
pub struct BearerToken(pub String);

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            bearer(req)
                .map(|t| BearerToken(t.to_owned()))
                .ok_or(ApiError::MissingToken),
        )
    }
}

/// The client's address: the socket peer, or what `X-Forwarded-For` says when
/// the peer is a configured trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

pub fn client_ip(req: &HttpRequest, state: &AppState) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| {
            a.ip().to_canonical()
        });
    // Several header lines are one list (RFC 9110 §5.3), in order.
    let lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!lines.is_empty()).then(|| lines.join(","));
    crate::domain::network::client_ip(peer, forwarded.as_deref(), &state.web.trusted_proxies)
}

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_state(req).map(|s| ClientIp(client_ip(req, &s))))
    }
}

/// The raw `Origin` header, if any. Browsers always send it on cross-origin
/// requests; servers normally do not.
#[derive(Debug)]
pub struct OriginHeader(pub Option<String>);

impl FromRequest for OriginHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        ready(Ok(OriginHeader(origin)))
    }
}

/// Proof that the request carries the configured admin token. Access tokens
/// (JWTs) and generated credentials are refused with 403, always.
#[derive(Debug)]
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let state = app_state(req)?;
            let token = bearer(req).ok_or(ApiError::AdminAuthRequired)?;
            if state.admin.verify(token) {
                return Ok(AdminAuth);
            }
            let looks_like_jwt = token.starts_with("eyJ") && token.matches('.').count() == 2;
            if looks_like_jwt || token.starts_with("kb_") {
                return Err(ApiError::AdminForbidden);
            }
            Err(ApiError::InvalidAdminToken)
        })();
        ready(result)
    }
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Which body encodings a route accepts.
#[derive(Clone, Copy)]
enum Accept {
    Json,
    JsonOrForm,
}

/// A JSON request body of at most `http.max_body_bytes`, arriving within
/// `http.body_timeout_ms`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON or `application/x-www-form-urlencoded` body, as Inbenta clients send
/// either.
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

fn read_body<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    accept: Accept,
) -> LocalBoxFuture<'static, Result<T, ApiError>> {
    let (limit, timeout) = match app_state(req) {
        Ok(state) => (state.web.max_body_bytes, state.web.body_timeout),
        Err(e) => return Box::pin(ready(Err(e))),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if declared_length.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        // The whole body must arrive within the timeout: a client trickling
        // it a byte at a time would otherwise hold the request (and what it
        // is about to do) open for as long as it likes.
        let read = async {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| ApiError::InvalidBody)?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = actix_web::rt::time::timeout(timeout, read)
            .await
            .map_err(|_| ApiError::RequestTimeout {
                limit_ms: timeout.as_millis(),
            })??;
        let supported = match accept {
            Accept::Json => JSON,
            Accept::JsonOrForm => "application/json or application/x-www-form-urlencoded",
        };
        let is_json = |ct: &str| ct == JSON || ct.ends_with("+json");
        match content_type.as_deref() {
            Some(ct) if is_json(ct) => parse_json(&body),
            Some(FORM) if matches!(accept, Accept::JsonOrForm) => {
                serde_urlencoded::from_bytes(&body)
                    .map_err(|e| ApiError::InvalidForm(e.to_string()))
            }
            // An empty body with no content type is an empty object.
            None if body.iter().all(u8::is_ascii_whitespace) => parse_json(b"{}"),
            _ => Err(ApiError::UnsupportedMediaType { supported }),
        }
    })
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("the JSON body has a wrong field: {e}"),
            _ => format!("the body is not valid JSON: {e}"),
        };
        ApiError::InvalidJson(message)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body::<T>(req, payload, Accept::Json);
        Box::pin(async move { body.await.map(JsonBody) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonOrForm<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body::<T>(req, payload, Accept::JsonOrForm);
        Box::pin(async move { body.await.map(JsonOrForm) })
    }
}
