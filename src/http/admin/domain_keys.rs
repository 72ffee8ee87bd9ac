//! Domain keys of an instance: add with domains (pending until `active_at`),
//! list, update domains, revoke.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{list_views, revoke_credential, CredentialView};
use crate::app::audit::AuditEntry;
use crate::app::AppState;
use crate::domain::credential::CredentialKind;
use crate::domain::settings::domain_list;
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domains {
    domains: Vec<String>,
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<Domains>,
) -> Result<HttpResponse, ApiError> {
    let domains = domain_list(&body.domains)?;
    let instance = state.load_instance(&path).await?;
    let (key, record) = state
        .issue_domain_key(&instance.id, domains, state.domain_key_propagation())
        .await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("domain_key.create").credential(&record.id),
        )
        .await;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CredentialView::created(&record, key.expose(), state.now())))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn list(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let keys = list_views(&state, &path, CredentialKind::DomainKey).await?;
    Ok(HttpResponse::Ok().json(json!({ "domain_keys": keys })))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, key = %path.1))]
pub async fn update(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<Domains>,
) -> Result<HttpResponse, ApiError> {
    let domains = domain_list(&body.domains)?;
    let (instance_id, id) = path.into_inner();
    state
        .load_credential(&instance_id, &id, CredentialKind::DomainKey)
        .await?;
    let record = state
        .store
        .set_domains(&instance_id, &id, &domains)
        .await?
        .ok_or(ApiError::NotFound { what: "domain key" })?;
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("domain_key.update")
                .credential(&id)
                .detail(json!({ "domains": domains })),
        )
        .await;
    Ok(HttpResponse::Ok().json(CredentialView::new(&record, state.now())))
}

/// Revokes at once, and every token the domain key minted with it.
#[tracing::instrument(skip_all, fields(instance = %path.0, key = %path.1))]
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
        CredentialKind::DomainKey,
        "domain_key.revoke",
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
