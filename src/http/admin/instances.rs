use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::experiences::{revoke_experience_tokens, ExperienceSettings};
use super::{load_instance, CredentialView, InstanceView};
use crate::domain::credential::{CredentialKind, Secret};
use crate::domain::instance::{
    CredentialRecord, Instance, Product, MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS,
};
use crate::error::ApiError;
use crate::http::audit::AuditEntry;
use crate::http::extract::{AdminAuth, JsonBody};
use crate::http::AppState;

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

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "name must be 1 to 200 characters",
        ));
    }
    Ok(name.to_owned())
}

fn validate_ttl(ttl: u64) -> Result<u64, ApiError> {
    if !(MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "token_ttl_seconds must be between {MIN_TOKEN_TTL_SECONDS} and {MAX_TOKEN_TTL_SECONDS}"
            ),
        ));
    }
    Ok(ttl)
}

/// Products as given, over the current ones: a slug keeps the settings it had
/// (and its experience token) unless the request changes them.
fn validate_products(
    input: BTreeMap<String, ExperienceSettings>,
    current: &BTreeMap<String, Product>,
) -> Result<BTreeMap<String, Product>, ApiError> {
    input
        .into_iter()
        .map(|(slug, settings)| {
            let product = settings.apply(&slug, current.get(&slug))?;
            Ok((slug, product))
        })
        .collect()
}

/// Creates an instance with its API key and first secret; the secret's value is
/// returned here and never again.
pub async fn provision_instance(
    state: &AppState,
    name: String,
    products: BTreeMap<String, Product>,
    token_ttl_seconds: u64,
) -> Result<(Instance, Secret, CredentialRecord), ApiError> {
    let now = state.now();
    let (instance, _) = Instance::new(name, products, token_ttl_seconds, now);
    let secret = Secret::generate();
    let record = CredentialRecord::new(
        &instance.id,
        CredentialKind::Secret,
        state.hasher.hash(secret.expose()),
        secret.masked(),
        now,
    );
    state.store.insert_instance(&instance, &record).await?;
    tracing::info!(instance = %instance.id, "instance created");
    Ok((instance, secret, record))
}

#[tracing::instrument(skip_all)]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateInstance>,
) -> Result<HttpResponse, ApiError> {
    let name = validate_name(&body.name)?;
    let products = validate_products(body.products, &BTreeMap::new())?;
    let ttl = validate_ttl(
        body.token_ttl_seconds
            .unwrap_or(state.default_token_ttl_seconds),
    )?;
    let (instance, secret, record) = provision_instance(&state, name, products, ttl).await?;
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
    let instance = load_instance(&state, &path).await?;
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
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let ttl = body.token_ttl_seconds.map(validate_ttl).transpose()?;
    let mut instance = load_instance(&state, &path).await?;
    let products = body
        .products
        .map(|p| validate_products(p, &instance.products))
        .transpose()?;

    if let Some(name) = name {
        instance.name = name;
    }
    let mut removed = Vec::new();
    if let Some(products) = products {
        removed = instance
            .products
            .keys()
            .filter(|slug| !products.contains_key(*slug))
            .cloned()
            .collect();
        instance.products = products;
    }
    if let Some(ttl) = ttl {
        instance.token_ttl_seconds = ttl;
    }
    if !state.store.update_instance(&instance).await? {
        return Err(ApiError::NotFound { what: "instance" });
    }
    for slug in &removed {
        revoke_experience_tokens(&state, &instance.id, slug).await?;
    }
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
    if !state.store.delete_instance(&path).await? {
        return Err(ApiError::NotFound { what: "instance" });
    }
    state.cors.invalidate();
    tracing::info!(instance = %path, "instance deleted");
    Ok(HttpResponse::NoContent().finish())
}
