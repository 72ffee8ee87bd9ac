use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use super::{list_views, load_credential, load_instance, revoke_with_tokens, CredentialView};
use crate::domain::credential::{CredentialKind, Secret};
use crate::domain::instance::{CredentialRecord, CredentialStatus};
use crate::error::ApiError;
use crate::http::audit::AuditEntry;
use crate::http::extract::{AdminAuth, JsonBody};
use crate::http::AppState;

/// Longest rotation grace: long enough for a slow deploy, short enough that a
/// forgotten rotation does not leave an old secret alive for good.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    #[serde(default)]
    grace_seconds: u64,
}

async fn issue_secret(
    state: &AppState,
    instance_id: &str,
) -> Result<(Secret, CredentialRecord), ApiError> {
    let secret = Secret::generate();
    let record = CredentialRecord::new(
        instance_id,
        CredentialKind::Secret,
        state.hasher.hash(secret.expose()),
        secret.masked(),
        state.now(),
    );
    state.store.insert_credential(&record).await?;
    Ok((secret, record))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let instance = load_instance(&state, &path).await?;
    let (secret, record) = issue_secret(&state, &instance.id).await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("secret.create").credential(&record.id),
        )
        .await;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CredentialView::created(
            &record,
            secret.expose(),
            state.now(),
        )))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn list(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let secrets = list_views(&state, &path, CredentialKind::Secret).await?;
    Ok(HttpResponse::Ok().json(json!({ "secrets": secrets })))
}

/// Revokes at once, and every token the secret minted with it.
#[tracing::instrument(skip_all, fields(instance = %path.0, secret = %path.1))]
pub async fn revoke(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (instance_id, id) = path.into_inner();
    let view = revoke_with_tokens(
        &state,
        &instance_id,
        &id,
        CredentialKind::Secret,
        "secret.revoke",
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Issues a new secret; the old one and its tokens keep working for
/// `grace_seconds` (0 = they die now).
#[tracing::instrument(skip_all, fields(instance = %path.0, secret = %path.1))]
pub async fn rotate(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<Rotate>,
) -> Result<HttpResponse, ApiError> {
    if body.grace_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("grace_seconds must be at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let (instance_id, id) = path.into_inner();
    let old = load_credential(&state, &instance_id, &id, CredentialKind::Secret).await?;
    let now = state.now();
    if old.status(now) == CredentialStatus::Revoked {
        return Err(ApiError::bad_request(
            "credential_revoked",
            "a revoked secret cannot be rotated; create a new one",
        ));
    }
    let (secret, record) = issue_secret(&state, &instance_id).await?;
    let grace = Duration::seconds(i64::try_from(body.grace_seconds).unwrap_or(0));
    let old = state
        .store
        .expire_credential(&instance_id, &id, now + grace)
        .await?
        .ok_or(ApiError::NotFound { what: "secret" })?;
    state
        .revoke_credential_tokens(&instance_id, &id, now + grace)
        .await?;
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("secret.rotate")
                .credential(&id)
                .detail(json!({ "grace_seconds": body.grace_seconds, "new": record.id })),
        )
        .await;
    let mut view = serde_json::to_value(CredentialView::created(&record, secret.expose(), now))
        .map_err(ApiError::internal)?;
    view["previous"] =
        serde_json::to_value(CredentialView::new(&old, now)).map_err(ApiError::internal)?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}
