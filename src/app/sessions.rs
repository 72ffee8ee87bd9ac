//! Sessions: refresh (`/v1/refreshToken`), logout (`/v1/revoke`) and
//! introspection (`/v1/introspect`).
//!
//! Refresh gives an unexpired access token a successor in the same session
//! (new `jti`, same `sid`). Within `tokens.refresh_reuse_seconds` the same
//! presented token gets the same successor, so two browser tabs refreshing at
//! once both keep a valid token. The store keeps only the successor's `jti`,
//! `iat` and `exp` (with `SET NX`: when two refreshes race, the loser answers
//! with the winner's); the token is signed again from them, and Ed25519
//! signatures are deterministic, so it is the same token. No bearer token is
//! ever stored.
//!
//! Logout revokes the presented token and its session (the whole refresh
//! family), RFC 7009 style: the caller learns nothing about the token.

use std::sync::Arc;

use super::access::{check_origin, Access};
use super::auth::IssuedToken;
use super::AppState;
use crate::domain::credential::ApiKey;
use crate::domain::instance::{CredentialStatus, Instance};
use crate::error::ApiError;
use crate::store::Revocation;
use crate::tokens::{Claims, TokenRequest};

/// What logout did with the presented token.
pub struct LoggedOut {
    /// The origin that may read the answer: the browser token's own, when it
    /// was presented from there.
    pub origin: Option<String>,
}

impl AppState {
    pub async fn refresh(&self, access: &Access) -> Result<IssuedToken, ApiError> {
        let (instance, claims) = (&access.instance, &access.claims);
        let now = self.now();

        let max_session = i64::try_from(self.sessions.max_session_seconds).unwrap_or(i64::MAX);
        let session_ends_at = claims.auth_time.saturating_add(max_session);
        if session_ends_at <= now.timestamp() {
            return Err(ApiError::SessionExpired);
        }
        // Revoking a credential also lists its tokens as revoked; this check
        // still holds if that second write never happened. Both reads go out
        // together.
        let reuse = i64::try_from(self.sessions.refresh_reuse_seconds).unwrap_or(0);
        let (credential, kept) = tokio::try_join!(
            self.store.get_credential(&instance.id, &claims.cred),
            async {
                if reuse > 0 {
                    self.store.successor(&instance.id, &claims.jti).await
                } else {
                    Ok(None)
                }
            },
        )?;
        let alive = credential.is_some_and(|c| c.status(now) != CredentialStatus::Revoked);
        if !alive {
            return Err(ApiError::CredentialRevoked);
        }
        if let Some(kept) = kept {
            return self.reissue_kept(instance, claims, &kept).await;
        }

        let ttl = i64::try_from(instance.token_ttl_seconds).unwrap_or(i64::MAX);
        let (token, new_claims) = self
            .tokens
            .issue(
                TokenRequest {
                    instance_id: &instance.id,
                    credential_id: &claims.cred,
                    kind: claims.kind,
                    origin: claims.org.clone(),
                    session: Some((&claims.sid, claims.auth_time)),
                    ttl_seconds: ttl,
                    session_ends_at: Some(session_ends_at),
                },
                now,
            )
            .map_err(ApiError::internal)?;
        if reuse > 0 {
            let ours = successor_record(&new_claims);
            let kept = self
                .store
                .remember_successor(&instance.id, &claims.jti, &ours, reuse)
                .await?;
            if kept != ours {
                return self.reissue_kept(instance, claims, &kept).await;
            }
        }
        self.metrics.token_refreshed();
        Ok(IssuedToken {
            instance: instance.clone(),
            token,
            claims: new_claims,
            now,
        })
    }

    /// Signs the kept successor again (the same token) unless it was revoked
    /// since.
    async fn reissue_kept(
        &self,
        instance: &Arc<Instance>,
        presented: &Claims,
        kept: &str,
    ) -> Result<IssuedToken, ApiError> {
        let mut parts = kept.split(' ');
        let (Some(jti), Some(iat), Some(exp)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::internal(std::io::Error::other(
                "malformed successor record",
            )));
        };
        let parse = |v: &str| v.parse::<i64>().map_err(ApiError::internal);
        let successor = Claims {
            jti: jti.to_owned(),
            iat: parse(iat)?,
            nbf: parse(iat)?,
            exp: parse(exp)?,
            ..presented.clone()
        };
        self.check_revocations(&successor).await?;
        let token = self.tokens.sign(&successor).map_err(ApiError::internal)?;
        Ok(IssuedToken {
            instance: instance.clone(),
            token,
            claims: successor,
            now: self.now(),
        })
    }

    /// Revokes the token and its session if the token is genuine and belongs
    /// to the instance of `api_key`; does nothing otherwise.
    pub async fn logout(
        &self,
        api_key: &ApiKey,
        token: &str,
        origin: Option<&str>,
    ) -> Result<LoggedOut, ApiError> {
        let Ok(claims) = self.tokens.verify(token, self.now()) else {
            return Ok(LoggedOut { origin: None });
        };
        // A browser logging out from the token's own origin may read the answer.
        let readable = claims
            .org
            .clone()
            .filter(|_| check_origin(&claims, origin).is_ok());
        let instance_id = self.store.instance_id_by_api_key(api_key.expose()).await?;
        if instance_id.is_some_and(|id| id == claims.sub) {
            let session_end = claims
                .auth_time
                .saturating_add(i64::try_from(self.sessions.max_session_seconds).unwrap_or(0));
            self.revoke(
                &claims.sub,
                Revocation::Token { jti: &claims.jti },
                claims.exp,
            )
            .await?;
            self.revoke(
                &claims.sub,
                Revocation::Session { sid: &claims.sid },
                session_end,
            )
            .await?;
            // Answer once every live process refuses the token (bounded).
            self.propagate(&claims.sub).await;
            tracing::info!(instance = %claims.sub, "token and session revoked by their holder");
        }
        Ok(LoggedOut { origin: readable })
    }

    /// The claims of `token` if it is active for `instance` right now: genuine,
    /// unexpired, the instance's own, not revoked.
    pub async fn introspect(
        &self,
        instance: &Instance,
        token: &str,
    ) -> Result<Option<Arc<Claims>>, ApiError> {
        let Ok(claims) = self.tokens.verify(token, self.now()) else {
            return Ok(None);
        };
        if claims.sub != instance.id {
            return Ok(None);
        }
        match self.check_revocations(&claims).await {
            Ok(()) => Ok(Some(claims)),
            Err(ApiError::TokenRevoked) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// What the store keeps of a successor: `jti iat exp`.
fn successor_record(claims: &Claims) -> String {
    format!("{} {} {}", claims.jti, claims.iat, claims.exp)
}
