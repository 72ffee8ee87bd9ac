//! `POST /v1/auth`: a secret (servers) or a domain key (browsers) for an access
//! token.
//!
//! Every way of presenting a wrong credential — unknown API key, wrong or
//! malformed secret, a secret of another instance, a revoked one — gets the same
//! 401, after the same work: both store lookups run and the HMAC check runs
//! against a decoy when nothing was found.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{lookup, token_response};
use crate::domain::credential::{ApiKey, CredentialKind, DomainKey, Secret};
use crate::domain::instance::CredentialStatus;
use crate::domain::origin::{self, Origin};
use crate::error::ApiError;
use crate::http::extract::{ApiKeyHeader, JsonOrForm, OriginHeader};
use crate::http::AppState;
use crate::tokens::{TokenKind, TokenRequest};

#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    secret: Option<String>,
    domain_key: Option<String>,
    #[serde(rename = "domainKey")]
    domain_key_camel: Option<String>,
}

enum Presented {
    Secret(String),
    DomainKey(String),
}

impl AuthRequest {
    fn credential(self) -> Result<Presented, ApiError> {
        let domain_key = match (self.domain_key, self.domain_key_camel) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "conflicting_credentials",
                    "send domain_key or domainKey, not both",
                ))
            }
            (a, b) => a.or(b),
        };
        match (self.secret, domain_key) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "conflicting_credentials",
                "send either a secret or a domain key, not both",
            )),
            (Some(secret), None) => Ok(Presented::Secret(secret)),
            (None, Some(key)) => Ok(Presented::DomainKey(key)),
            (None, None) => Err(ApiError::bad_request(
                "missing_credential",
                "the body must contain a secret or a domain_key",
            )),
        }
    }
}

#[tracing::instrument(skip_all, fields(kind))]
pub async fn auth(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    OriginHeader(origin): OriginHeader,
    JsonOrForm(request): JsonOrForm<AuthRequest>,
) -> Result<HttpResponse, ApiError> {
    let result = exchange(&state, &api_key, origin.as_deref(), request.credential()?).await;
    match &result {
        Ok(_) => state.metrics.auth_succeeded(),
        Err(e) => {
            state.metrics.auth_failed();
            tracing::info!(reason = e.parts().1, "authentication refused");
        }
    }
    result
}

async fn exchange(
    state: &AppState,
    api_key: &ApiKey,
    origin: Option<&str>,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let (instance, credential, kind, org) = match presented {
        Presented::Secret(raw) => {
            tracing::Span::current().record("kind", "secret");
            if origin.is_some() {
                return Err(ApiError::SecretFromBrowser);
            }
            let secret: Secret = raw
                .trim()
                .parse()
                .map_err(|_| ApiError::InvalidCredentials)?;
            let (instance, credential) =
                lookup(state, api_key, secret.expose(), CredentialKind::Secret).await?;
            (instance, credential, TokenKind::Server, None)
        }
        Presented::DomainKey(raw) => {
            tracing::Span::current().record("kind", "domain_key");
            let key: DomainKey = raw
                .trim()
                .parse()
                .map_err(|_| ApiError::InvalidCredentials)?;
            let (instance, credential) =
                lookup(state, api_key, key.expose(), CredentialKind::DomainKey).await?;
            if credential.status(now) == CredentialStatus::Pending {
                let active_at = credential.active_at.unwrap_or(now);
                let wait = (active_at - now).num_milliseconds().max(0);
                return Err(ApiError::DomainKeyPending {
                    active_at: active_at.timestamp(),
                    retry_after: u64::try_from((wait + 999) / 1000).unwrap_or(0),
                });
            }
            let origin: Origin = origin
                .ok_or(ApiError::OriginNotAllowed)?
                .parse()
                .map_err(|_| ApiError::OriginNotAllowed)?;
            let patterns = origin::parse_patterns(&credential.domains)
                .map_err(|_| ApiError::OriginNotAllowed)?;
            if !origin::any_matches(&patterns, &origin) {
                return Err(ApiError::OriginNotAllowed);
            }
            (
                instance,
                credential,
                TokenKind::Browser,
                Some(origin.to_string()),
            )
        }
    };

    let ttl = i64::try_from(instance.token_ttl_seconds).unwrap_or(i64::MAX);
    let (token, claims) = state
        .tokens
        .issue(
            TokenRequest {
                instance_id: &instance.id,
                credential_id: &credential.id,
                kind,
                origin: org,
                session: None,
                ttl_seconds: ttl,
                session_ends_at: None,
            },
            now,
        )
        .map_err(ApiError::internal)?;
    state
        .store
        .touch_credential(&instance.id, &credential.id, now)
        .await?;
    state.metrics.token_issued();
    Ok(token_response(state, &instance, token, &claims, now))
}
