//! `POST /v1/introspect` (RFC 7662) for product services that validate tokens
//! themselves. The caller authenticates as the instance with HTTP Basic
//! `api_key:secret`; the body is `token=<jwt>` (form) or `{"token": "<jwt>"}`.
//! Any token that is not valid *for that instance* right now — bad signature,
//! expired, revoked, another instance's — is just `{"active": false}`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::lookup;
use crate::domain::credential::{ApiKey, CredentialKind, Secret};
use crate::error::ApiError;
use crate::http::access::check_revocations;
use crate::http::extract::JsonOrForm;
use crate::http::AppState;

#[derive(Debug, Deserialize)]
pub struct IntrospectRequest {
    token: String,
}

fn basic_credentials(req: &HttpRequest) -> Option<(ApiKey, Secret)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.parse().ok()?, password.parse().ok()?))
}

#[tracing::instrument(skip_all)]
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonOrForm(body): JsonOrForm<IntrospectRequest>,
) -> Result<HttpResponse, ApiError> {
    let (api_key, secret) = basic_credentials(&req).ok_or(ApiError::InvalidCredentials)?;
    let (instance, _) = lookup(&state, &api_key, secret.expose(), CredentialKind::Secret).await?;

    let inactive = || HttpResponse::Ok().json(json!({ "active": false }));
    let Ok(claims) = state.tokens.verify(&body.token, state.now()) else {
        return Ok(inactive());
    };
    if claims.sub != instance.id {
        return Ok(inactive());
    }
    match check_revocations(&state, &claims).await {
        Ok(()) => {}
        Err(ApiError::TokenRevoked) => return Ok(inactive()),
        Err(other) => return Err(other),
    }
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
    if let Some(org) = claims.org {
        body["org"] = json!(org);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
