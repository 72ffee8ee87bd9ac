//! `POST /admin/v1/instances/{id}/revoke-tokens`: by `jti`, by session `sid`,
//! an experience token by its credential id (`experience_token`), or `{}` for
//! every access token of the instance issued until now.
//!
//! The answer comes once every live broker process has applied the
//! revocation, or after a bound (see `app/propagation.rs`); `processes` and
//! `acknowledged` say how many were live and how many applied it by then.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::rfc3339;
use crate::app::audit::AuditEntry;
use crate::app::revocations::TokenTarget;
use crate::app::AppState;
use crate::domain::settings::present;
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    /// `Some(None)` is an explicit `null`: refused, so that a client bug can
    /// never turn "revoke this token" into "revoke everything".
    #[serde(default, deserialize_with = "present")]
    jti: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    sid: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    experience_token: Option<Option<String>>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn revoke_tokens(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RevokeTokens>,
) -> Result<HttpResponse, ApiError> {
    let (jti, sid, xt) = match (body.jti, body.sid, body.experience_token) {
        (Some(None), _, _) | (_, Some(None), _) | (_, _, Some(None)) => {
            return Err(ApiError::InvalidRequest(
                "jti, sid and experience_token cannot be null; send {} to revoke every token of the instance".into(),
            ))
        }
        (jti, sid, xt) => (jti.flatten(), sid.flatten(), xt.flatten()),
    };
    let target = match (&jti, &sid, &xt) {
        (Some(jti), None, None) if valid_id(jti) => TokenTarget::Token(jti),
        (None, Some(sid), None) if valid_id(sid) => TokenTarget::Session(sid),
        (None, None, Some(id)) if valid_id(id) => TokenTarget::ExperienceToken(id),
        (None, None, None) => TokenTarget::Instance,
        (Some(_), None, None) | (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "jti, sid and experience_token are 1 to 128 characters of letters, digits, - and _"
                    .into(),
            ))
        }
        _ => {
            return Err(ApiError::InvalidRequest(
                "send one of jti, sid or experience_token (or {} for every token of the instance)"
                    .into(),
            ))
        }
    };
    let at = state.revoke_tokens(&path, target).await?;
    let scope = target.scope();
    let propagation = state
        .admin_changed(
            &path,
            AuditEntry::admin("tokens.revoke")
                .target(scope)
                .detail(json!({ "jti": jti, "sid": sid, "experience_token": xt })),
        )
        .await;
    Ok(HttpResponse::Ok().json(json!({
        "revoked": scope,
        "jti": jti,
        "sid": sid,
        "experience_token": xt,
        "at": rfc3339(at),
        "processes": propagation.processes,
        "acknowledged": propagation.acknowledged,
    })))
}
