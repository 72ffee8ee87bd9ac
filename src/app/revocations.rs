//! Revocations an operator asks for (`revoke-tokens`): one access token, one
//! session, one experience token, or every access token of an instance issued
//! until now. Each entry is kept as long
//! as something it names could still be alive (see `AppState::revoke`).

use chrono::{DateTime, Utc};

use super::AppState;
use crate::domain::credential::CredentialKind;
use crate::error::ApiError;
use crate::store::Revocation;

/// What to revoke.
#[derive(Debug, Clone, Copy)]
pub enum TokenTarget<'a> {
    Token(&'a str),
    Session(&'a str),
    /// An experience token, by its credential id: revoked at once, grace or
    /// not.
    ExperienceToken(&'a str),
    Instance,
}

impl TokenTarget<'_> {
    /// The name the API and the audit log give this scope.
    pub fn scope(self) -> &'static str {
        match self {
            TokenTarget::Token(_) => "token",
            TokenTarget::Session(_) => "session",
            TokenTarget::ExperienceToken(_) => "experience_token",
            TokenTarget::Instance => "instance",
        }
    }
}

impl AppState {
    /// Records the revocation; returns when it took effect.
    pub async fn revoke_tokens(
        &self,
        instance_id: &str,
        target: TokenTarget<'_>,
    ) -> Result<DateTime<Utc>, ApiError> {
        let instance = self.load_instance(instance_id).await?;
        let now = self.now();
        let at = now.timestamp();
        // The longest a named token or session could still live.
        let token_lifetime_end = self.last_expiry_of_tokens_issued_by(at);
        let session_end = at + i64::try_from(self.sessions.max_session_seconds).unwrap_or(0);
        let (revocation, keep_until) = match target {
            TokenTarget::ExperienceToken(id) => {
                self.load_credential(&instance.id, id, CredentialKind::ExperienceToken)
                    .await?;
                self.store.revoke_credential(&instance.id, id, now).await?;
                return Ok(now);
            }
            TokenTarget::Token(jti) => (Revocation::Token { jti }, token_lifetime_end),
            TokenTarget::Session(sid) => (Revocation::Session { sid }, session_end),
            TokenTarget::Instance => (Revocation::Instance { before: at }, token_lifetime_end),
        };
        self.revoke(&instance.id, revocation, keep_until).await?;
        Ok(now)
    }
}
