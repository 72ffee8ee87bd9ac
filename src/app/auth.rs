//! Exchanging a credential for an access token (`POST /v1/auth`): a secret
//! (servers) or a domain key (browsers).
//!
//! Every way of presenting a wrong credential — unknown API key, wrong or
//! malformed secret, a secret of another instance, a revoked one — gets the same
//! 401, after the same work: both store lookups run and the HMAC check runs
//! against a decoy when nothing was found.
//!
//! Failed exchanges are counted per client IP and per API key in fixed
//! one-minute windows; past either limit the exchange answers 429 until the
//! window ends, whatever the credential.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::audit::AuditEntry;
use super::usage::{AUTH_FAILED, AUTH_OK};
use super::AppState;
use crate::domain::credential::{ApiKey, CredentialKind, DomainKey, Secret};
use crate::domain::instance::{CredentialStatus, Instance};
use crate::domain::network::limit_key;
use crate::domain::origin::{self, Origin};
use crate::domain::window::{ceil_seconds, FixedWindow};
use crate::error::ApiError;
use crate::store::{counters, Window};
use crate::tokens::{Claims, TokenKind, TokenRequest};

/// The credential a client presented, before it is parsed.
pub enum Presented {
    Secret(String),
    DomainKey(String),
}

/// A signed access token and what its response shows.
pub struct IssuedToken {
    pub instance: Arc<Instance>,
    pub token: String,
    pub claims: Claims,
    pub now: DateTime<Utc>,
}

impl AppState {
    /// `origin` is the request's `Origin` header, if any; `ip` the client.
    #[tracing::instrument(skip_all, fields(kind))]
    pub async fn exchange(
        &self,
        api_key: &ApiKey,
        origin: Option<&str>,
        ip: IpAddr,
        presented: Presented,
    ) -> Result<IssuedToken, ApiError> {
        let now = self.now();
        let minute = FixedWindow::minute(now);
        let counters = [
            counters::auth_failures_by_ip(&limit_key(ip), minute.index),
            counters::auth_failures_by_key(api_key.expose(), minute.index),
        ];
        // The failure counters are read alongside the exchange (one round trip
        // less); the exchange writes nothing, and its result is dropped unseen
        // when the limit is reached.
        let mut identified = None;
        let (failures, result) = tokio::join!(
            self.store.peek(None, &counters),
            self.issue_for(api_key, origin, presented, &mut identified),
        );
        let failures = failures?;
        if failures.first().copied().unwrap_or(0) >= self.auth_limits.failures_per_ip_per_minute
            || failures.get(1).copied().unwrap_or(0) >= self.auth_limits.failures_per_key_per_minute
        {
            self.metrics.auth_failed();
            return Err(ApiError::TooManyFailures {
                retry_after: minute.left_seconds(),
            });
        }
        let now_s = now.timestamp();
        match &result {
            Ok(_) => {
                self.metrics.auth_succeeded();
                if let Some((instance_id, credential_id)) = &identified {
                    self.usage.count(instance_id, credential_id, AUTH_OK, now_s);
                }
            }
            Err(e) => {
                self.metrics.auth_failed();
                let reason = e.reason().as_str();
                tracing::info!(reason, "authentication refused");
                if matches!(e, ApiError::InvalidCredentials) {
                    let windows = counters.map(|suffix| Window {
                        suffix,
                        limit: u64::MAX,
                        ttl_ms: minute.left_ms,
                    });
                    self.store.hit(None, &windows).await?;
                }
                self.record_failure(api_key, identified.as_ref(), reason, ip, now_s)
                    .await?;
            }
        }
        result
    }

    /// Counts and audits a refused exchange against its instance, if the API
    /// key names one.
    async fn record_failure(
        &self,
        api_key: &ApiKey,
        identified: Option<&(String, String)>,
        reason: &str,
        ip: IpAddr,
        now_s: i64,
    ) -> Result<(), ApiError> {
        // The lookup has just cached the instance, if there is one: only its
        // epoch is read again.
        let instance_id = match identified {
            Some((instance_id, _)) => Some(instance_id.clone()),
            None => self
                .caches
                .instances
                .current_by_api_key(self.store.as_ref(), api_key.expose())
                .await?
                .map(|i| i.id.clone()),
        };
        let Some(instance_id) = instance_id else {
            return Ok(());
        };
        let credential_id = identified.map_or("unknown", |(_, c)| c.as_str());
        self.usage
            .count(&instance_id, credential_id, AUTH_FAILED, now_s);
        let mut entry = AuditEntry::client("auth.failed")
            .reason(reason)
            .ip(&ip.to_string());
        if let Some((_, credential_id)) = identified {
            entry = entry.credential(credential_id);
        }
        self.audit(&instance_id, entry).await;
        Ok(())
    }

    /// `identified` is set once the credential is known to be genuine, so
    /// that a later refusal (origin, pending) is counted against it.
    async fn issue_for(
        &self,
        api_key: &ApiKey,
        origin: Option<&str>,
        presented: Presented,
        identified: &mut Option<(String, String)>,
    ) -> Result<IssuedToken, ApiError> {
        let now = self.now();
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
                let (instance, credential) = self
                    .authenticate(api_key, secret.expose(), CredentialKind::Secret)
                    .await?;
                *identified = Some((instance.id.clone(), credential.id.clone()));
                (instance, credential, TokenKind::Server, None)
            }
            Presented::DomainKey(raw) => {
                tracing::Span::current().record("kind", "domain_key");
                let key: DomainKey = raw
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::InvalidCredentials)?;
                let (instance, credential) = self
                    .authenticate(api_key, key.expose(), CredentialKind::DomainKey)
                    .await?;
                *identified = Some((instance.id.clone(), credential.id.clone()));
                if credential.status(now) == CredentialStatus::Pending {
                    let active_at = credential.active_at.unwrap_or(now);
                    return Err(ApiError::DomainKeyPending {
                        active_at: active_at.timestamp(),
                        retry_after: ceil_seconds((active_at - now).num_milliseconds()),
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
        let (token, claims) = self
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
        // last_used_at is written with the buffered usage counters (usage.rs).
        self.metrics.token_issued();
        Ok(IssuedToken {
            instance,
            token,
            claims,
            now,
        })
    }
}
