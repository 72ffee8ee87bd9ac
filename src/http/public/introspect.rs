//! `POST /v1/introspect` (RFC 7662) for product services that validate tokens
//! themselves. The caller authenticates as the instance with HTTP Basic
//! `api_key:secret`; the body is `token=<jwt>` (form) or `{"token": "<jwt>"}`.
//! Any token that is not valid *for that instance* right now — bad signature,
//! expired, revoked, another instance's — is just `{"active": false}`
//! (`AppState::introspect`).

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::domain::credential::ApiKey;
use crate::domain::instance::Instance;
use crate::error::ApiError;
use crate::http::extract::{app_state, client_ip, JsonOrForm};

#[derive(Debug, Deserialize)]
pub struct IntrospectRequest {
    token: String,
}

/// The instance authenticated by HTTP Basic `api_key:secret`; checked before
/// the body is read (see [`introspect`]), so an unauthenticated caller learns
/// nothing from it.
/// Failures count in the `/v1/auth` brute-force limits and the audit log
/// (`introspect.failed`).
pub struct IntrospectionClient(Arc<Instance>);

impl FromRequest for IntrospectionClient {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let credentials = basic_credentials(req);
        let ip = state.as_ref().ok().map(|state| client_ip(req, state));
        Box::pin(async move {
            let state = state?;
            let (api_key, secret) = credentials.ok_or(ApiError::InvalidClient)?;
            let ip = ip.ok_or(ApiError::InvalidClient)?;
            match state.authenticate_client(&api_key, &secret, ip).await {
                Ok(instance) => Ok(IntrospectionClient(instance)),
                Err(ApiError::InvalidCredentials) => Err(ApiError::InvalidClient),
                Err(other) => Err(other),
            }
        })
    }
}

fn basic_credentials(req: &HttpRequest) -> Option<(ApiKey, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.parse().ok()?, password.to_owned()))
}

/// The body is read only once the client is authenticated: actix extracts a
/// handler's arguments concurrently, so with `JsonOrForm` as an argument a
/// malformed body could answer 400 while the client lookup was still waiting
/// on the store, and that failed client would go uncounted.
#[tracing::instrument(skip_all)]
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    IntrospectionClient(instance): IntrospectionClient,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let JsonOrForm(body) =
        JsonOrForm::<IntrospectRequest>::from_request(&req, &mut payload.into_inner()).await?;
    let inactive = || {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "active": false }))
    };
    let Some(claims) = state.introspect(&instance, &body.token).await? else {
        return Ok(inactive());
    };
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "client_id": instance.api_key,
        "iss": claims.iss,
        "sub": claims.sub,
        "aud": claims.aud,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "exp": claims.exp,
        "jti": claims.jti,
        "sid": claims.sid,
        "cred": claims.cred,
        "kind": claims.kind,
    });
    if let Some(org) = &claims.org {
        body["org"] = json!(org);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
