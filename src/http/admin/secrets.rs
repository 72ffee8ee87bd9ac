//! Secrets of an instance: add (shown once), list masked, revoke, rotate with
//! a grace.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{list_views, revoke_credential, CredentialView};
use crate::app::audit::AuditEntry;
use crate::app::AppState;
use crate::domain::credential::CredentialKind;
use crate::domain::settings::Grace;
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    #[serde(default)]
    grace_seconds: u64,
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let instance = state.load_instance(&path).await?;
    let (secret, record) = state.issue_secret(&instance.id).await?;
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
    let view = revoke_credential(
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
    let grace = Grace::parse(body.grace_seconds)?;
    let (instance_id, id) = path.into_inner();
    let (secret, record, old) = state.rotate_secret(&instance_id, &id, grace).await?;
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("secret.rotate")
                .credential(&id)
                .detail(json!({ "grace_seconds": grace.seconds(), "new": record.id })),
        )
        .await;
    let now = state.now();
    let mut view = serde_json::to_value(CredentialView::created(&record, secret.expose(), now))
        .map_err(ApiError::internal)?;
    view["previous"] =
        serde_json::to_value(CredentialView::new(&old, now)).map_err(ApiError::internal)?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}
