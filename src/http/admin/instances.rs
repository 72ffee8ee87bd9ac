//! Instances: create (API key and first secret shown once), list, get,
//! update, delete.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{CredentialView, InstanceView};
use crate::app::audit::AuditEntry;
use crate::app::instances::{products_from, InstanceChange};
use crate::app::AppState;
use crate::domain::settings::{token_ttl, ExperienceSettings, InstanceName};
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    name: String,
    #[serde(default)]
    products: BTreeMap<String, ExperienceSettings>,
    token_ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    name: Option<String>,
    products: Option<BTreeMap<String, ExperienceSettings>>,
    token_ttl_seconds: Option<u64>,
}

#[tracing::instrument(skip_all)]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateInstance>,
) -> Result<HttpResponse, ApiError> {
    let name = InstanceName::parse(&body.name)?;
    let products = products_from(body.products, &BTreeMap::new(), &state.upstreams)?;
    let ttl = token_ttl(
        body.token_ttl_seconds
            .unwrap_or(state.sessions.default_token_ttl_seconds),
    )?;
    let (instance, secret, record) = state
        .provision_instance(name.into_inner(), products, ttl)
        .await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("instance.create").target(&instance.id),
        )
        .await;
    let location = format!("/admin/v1/instances/{}", instance.id);
    let mut view = InstanceView::new(instance);
    view.secret = Some(CredentialView::created(
        &record,
        secret.expose(),
        state.now(),
    ));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
}

#[tracing::instrument(skip_all)]
pub async fn list(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let instances: Vec<InstanceView> = state
        .store
        .list_instances()
        .await?
        .into_iter()
        .map(InstanceView::new)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "instances": instances })))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn get(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let instance = state.load_instance(&path).await?;
    Ok(HttpResponse::Ok().json(InstanceView::new(instance)))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn update(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateInstance>,
) -> Result<HttpResponse, ApiError> {
    // Validate everything before writing, so a bad request changes nothing.
    let change = InstanceChange {
        name: body.name.as_deref().map(InstanceName::parse).transpose()?,
        token_ttl_seconds: body.token_ttl_seconds.map(token_ttl).transpose()?,
        products: body.products,
    };
    let instance = state.update_instance(&path, change).await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("instance.update").target(&instance.id),
        )
        .await;
    Ok(HttpResponse::Ok().json(InstanceView::new(instance)))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn delete(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.delete_instance(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}
