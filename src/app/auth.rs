//! Exchanging a credential for an access token (`POST /v1/auth`): a secret
//! (servers) or a domain key (browsers).
//!
//! Every way of presenting a wrong credential — unknown API key, wrong or
//! malformed secret, a secret of another instance, a revoked one — gets the same
//! 401, after the same work: both store lookups run and the HMAC check runs
//! against a decoy when nothing was found.
//!
//! Failed exchanges are counted in fixed one-minute windows, per client IP and
//! per API key (brute-force protection, SPEC §6). The two limits differ
//! because an API key is public:
//! - past the per-IP limit, that address gets 429 until the window ends,
//!   whatever it presents;
//! - the per-API-key limit counts only failures of credentials in a
//!   recognised format (right prefix and checksum: a guess, not noise), and
//!   past it only *wrong* credentials get 429; a correct one is always
//!   exchanged. Failures from other clients can slow guessing down but never
//!   lock the real holder out.

use std::future::Future;
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

/// The presented credential, parsed once; `None` when it is not in the
/// format of its kind.
enum Credential {
    Secret(Option<Secret>),
    DomainKey(Option<DomainKey>),
}

impl Credential {
    fn parse(presented: Presented) -> Self {
        match presented {
            Presented::Secret(raw) => Credential::Secret(raw.trim().parse().ok()),
            Presented::DomainKey(raw) => Credential::DomainKey(raw.trim().parse().ok()),
        }
    }

    fn recognised(&self) -> bool {
        match self {
            Credential::Secret(s) => s.is_some(),
            Credential::DomainKey(k) => k.is_some(),
        }
    }
}

/// A refused attempt, as the audit log records it.
struct Failure<'a> {
    action: &'static str,
    reason: &'a str,
    ip: IpAddr,
    identified: Option<&'a (String, String)>,
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
        let credential = Credential::parse(presented);
        let recognised = credential.recognised();
        let attempt = async {
            let mut identified = None;
            let result = self
                .issue_for(api_key, origin, credential, &mut identified)
                .await;
            (result, identified)
        };
        let result = self
            .limited(api_key, ip, recognised, "auth.failed", attempt)
            .await;
        match &result {
            Ok(_) => self.metrics.auth_succeeded(),
            Err(_) => self.metrics.auth_failed(),
        }
        result
    }

    /// The instance of an introspection client (HTTP Basic `api_key:secret`),
    /// under the same brute-force limits and audit as `/v1/auth`.
    pub async fn authenticate_client(
        &self,
        api_key: &ApiKey,
        secret: &str,
        ip: IpAddr,
    ) -> Result<Arc<Instance>, ApiError> {
        let secret: Option<Secret> = secret.trim().parse().ok();
        let recognised = secret.is_some();
        let attempt = async {
            let Some(secret) = secret else {
                return (Err(ApiError::InvalidCredentials), None);
            };
            match self
                .authenticate(api_key, secret.expose(), CredentialKind::Secret)
                .await
            {
                Ok((instance, credential)) => {
                    let id = (instance.id.clone(), credential.id);
                    (Ok(instance), Some(id))
                }
                Err(e) => (Err(e), None),
            }
        };
        self.limited(api_key, ip, recognised, "introspect.failed", attempt)
            .await
    }

    /// Runs an authentication attempt under the brute-force limits (see the
    /// module doc), counts its outcome in the usage counters and audits a
    /// failure as `action`. The attempt answers with what it identified (the
    /// instance and credential ids) once the credential proved genuine.
    async fn limited<T>(
        &self,
        api_key: &ApiKey,
        ip: IpAddr,
        recognised: bool,
        action: &'static str,
        attempt: impl Future<Output = (Result<T, ApiError>, Option<(String, String)>)>,
    ) -> Result<T, ApiError> {
        let now = self.now();
        let minute = FixedWindow::minute(now);
        let counters = [
            counters::auth_failures_by_ip(&limit_key(ip), minute.index),
            counters::auth_failures_by_key(api_key.expose(), minute.index),
        ];
        // The failure counters are read alongside the attempt (one round trip
        // less); the attempt writes nothing, and its result is dropped unseen
        // when a limit refuses it.
        let (failures, (result, identified)) =
            tokio::join!(self.store.peek(None, &counters), attempt);
        let failures = failures?;
        let over_ip =
            failures.first().copied().unwrap_or(0) >= self.auth_limits.failures_per_ip_per_minute;
        let over_key =
            failures.get(1).copied().unwrap_or(0) >= self.auth_limits.failures_per_key_per_minute;
        if over_ip || (over_key && result.is_err()) {
            return Err(ApiError::TooManyFailures {
                retry_after: minute.left_seconds(),
            });
        }
        let now_s = now.timestamp();
        match &result {
            Ok(_) => {
                if let Some((instance_id, credential_id)) = &identified {
                    self.usage.count(instance_id, credential_id, AUTH_OK, now_s);
                }
            }
            Err(e) => {
                let reason = e.reason().as_str();
                tracing::info!(reason, action, "authentication refused");
                if matches!(e, ApiError::InvalidCredentials) {
                    // Noise counts against its address only.
                    let counted = if recognised { 2 } else { 1 };
                    let windows: Vec<Window> = counters
                        .into_iter()
                        .take(counted)
                        .map(|suffix| Window {
                            suffix,
                            limit: u64::MAX,
                            ttl_ms: minute.left_ms,
                        })
                        .collect();
                    self.store.hit(None, &windows).await?;
                }
                let failure = Failure {
                    action,
                    reason,
                    ip,
                    identified: identified.as_ref(),
                };
                self.record_failure(api_key, failure, now_s).await?;
            }
        }
        result
    }

    /// Counts and audits a refused exchange against its instance, if the API
    /// key names one.
    async fn record_failure(
        &self,
        api_key: &ApiKey,
        failure: Failure<'_>,
        now_s: i64,
    ) -> Result<(), ApiError> {
        let Failure {
            action,
            reason,
            ip,
            identified,
        } = failure;
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
        let mut entry = AuditEntry::client(action)
            .reason(reason)
            .ip(&ip.to_string());
        if let Some((_, credential_id)) = identified {
            entry = entry.credential(credential_id);
        }
        self.audit_later(&instance_id, entry);
        Ok(())
    }

    /// `identified` is set once the credential is known to be genuine, so
    /// that a later refusal (origin, pending) is counted against it.
    async fn issue_for(
        &self,
        api_key: &ApiKey,
        origin: Option<&str>,
        presented: Credential,
        identified: &mut Option<(String, String)>,
    ) -> Result<IssuedToken, ApiError> {
        let now = self.now();
        let (instance, credential, kind, org) = match presented {
            Credential::Secret(secret) => {
                tracing::Span::current().record("kind", "secret");
                if origin.is_some() {
                    return Err(ApiError::SecretFromBrowser);
                }
                let secret = secret.ok_or(ApiError::InvalidCredentials)?;
                let (instance, credential) = self
                    .authenticate(api_key, secret.expose(), CredentialKind::Secret)
                    .await?;
                *identified = Some((instance.id.clone(), credential.id.clone()));
                (instance, credential, TokenKind::Server, None)
            }
            Credential::DomainKey(key) => {
                tracing::Span::current().record("kind", "domain_key");
                let key = key.ok_or(ApiError::InvalidCredentials)?;
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
