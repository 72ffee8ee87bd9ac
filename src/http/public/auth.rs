//! `POST /v1/auth`: a secret (servers) or a domain key (browsers) for an access
//! token.
//!
//! Every way of presenting a wrong credential — unknown API key, wrong or
//! malformed secret, a secret of another instance, a revoked one — gets the same
//! 401, after the same work: both store lookups run and the HMAC check runs
//! against a decoy when nothing was found.

use std::net::IpAddr;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{lookup, token_response};
use crate::domain::credential::{ApiKey, CredentialKind, DomainKey, Secret};
use crate::domain::instance::CredentialStatus;
use crate::domain::network::limit_key;
use crate::domain::origin::{self, Origin};
use crate::error::ApiError;
use crate::http::audit::AuditEntry;
use crate::http::extract::{ApiKeyHeader, ClientIp, JsonOrForm, OriginHeader};
use crate::http::usage::{AUTH_FAILED, AUTH_OK};
use crate::http::AppState;
use crate::store::Window;
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

/// Failed exchanges are counted per client IP and per API key in fixed
/// one-minute windows; past either limit `/v1/auth` answers 429 until the window
/// ends, before looking at the credential.
fn failure_counters(ip: IpAddr, api_key: &ApiKey, now: DateTime<Utc>) -> ([String; 2], i64) {
    let now_ms = now.timestamp_millis();
    let minute = now_ms.div_euclid(60_000);
    let left_ms = (minute + 1) * 60_000 - now_ms;
    (
        [
            format!("authfail:ip:{}:{minute}", limit_key(ip)),
            format!("authfail:key:{}:{minute}", api_key.expose()),
        ],
        left_ms,
    )
}

#[tracing::instrument(skip_all, fields(kind))]
pub async fn auth(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    OriginHeader(origin): OriginHeader,
    ClientIp(ip): ClientIp,
    JsonOrForm(request): JsonOrForm<AuthRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = request.credential()?;
    let now = state.now();
    let (counters, left_ms) = failure_counters(ip, &api_key, now);
    // The failure counters are read alongside the exchange (one round trip
    // less); the exchange writes nothing, and its result is dropped unseen
    // when the limit is reached.
    let mut identified = None;
    let (failures, result) = tokio::join!(
        state.store.peek(None, &counters),
        exchange(
            &state,
            &api_key,
            origin.as_deref(),
            presented,
            &mut identified,
        ),
    );
    let failures = failures?;
    if failures.first().copied().unwrap_or(0) >= state.auth_failures_per_ip_per_minute
        || failures.get(1).copied().unwrap_or(0) >= state.auth_failures_per_key_per_minute
    {
        state.metrics.auth_failed();
        return Err(ApiError::TooManyFailures {
            retry_after: u64::try_from((left_ms + 999) / 1000).unwrap_or(1),
        });
    }
    let now_s = now.timestamp();
    match &result {
        Ok(_) => {
            state.metrics.auth_succeeded();
            if let Some((instance_id, credential_id)) = &identified {
                state
                    .usage
                    .count(instance_id, credential_id, AUTH_OK, now_s);
            }
        }
        Err(e) => {
            state.metrics.auth_failed();
            let reason = e.parts().1;
            tracing::info!(reason, "authentication refused");
            if matches!(e, ApiError::InvalidCredentials) {
                let windows = counters.map(|suffix| Window {
                    suffix,
                    limit: u64::MAX,
                    ttl_ms: left_ms,
                });
                state.store.hit(None, &windows).await?;
            }
            // The lookup has just cached the instance, if there is one: only
            // its epoch is read again.
            let instance_id = match &identified {
                Some((instance_id, _)) => Some(instance_id.clone()),
                None => state
                    .instances
                    .current_by_api_key(state.store.as_ref(), api_key.expose())
                    .await?
                    .map(|i| i.id.clone()),
            };
            if let Some(instance_id) = instance_id {
                let credential_id = identified.as_ref().map_or("unknown", |(_, c)| c.as_str());
                state
                    .usage
                    .count(&instance_id, credential_id, AUTH_FAILED, now_s);
                let mut entry = AuditEntry::client("auth.failed")
                    .reason(reason)
                    .ip(&ip.to_string());
                if let Some((_, credential_id)) = &identified {
                    entry = entry.credential(credential_id);
                }
                state.audit(&instance_id, entry).await;
            }
        }
    }
    result
}

/// `identified` is set once the credential is known to be genuine, so that a
/// later refusal (origin, pending) is counted against it.
async fn exchange(
    state: &AppState,
    api_key: &ApiKey,
    origin: Option<&str>,
    presented: Presented,
    identified: &mut Option<(String, String)>,
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
            *identified = Some((instance.id.clone(), credential.id.clone()));
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
            *identified = Some((instance.id.clone(), credential.id.clone()));
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
    // last_used_at is written with the buffered usage counters (see usage.rs).
    state.metrics.token_issued();
    Ok(token_response(state, &instance, token, &claims, now))
}
