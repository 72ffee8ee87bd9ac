//! Experiences (SPEC §1, §7) over HTTP: create (token shown once), list, get,
//! update, delete, regenerate the token (see `app/experiences.rs`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::CredentialView;
use crate::app::audit::AuditEntry;
use crate::app::experiences::product_of;
use crate::app::AppState;
use crate::domain::instance::Product;
use crate::domain::settings::{ExperienceSettings, Grace};
use crate::error::ApiError;
use crate::http::extract::{AdminAuth, JsonBody};

/// The experience view of a product (SPEC §7 shape).
pub fn experience_view(slug: &str, product: &Product, token: Option<Value>) -> Value {
    let operations = product
        .allowed_operations()
        .map_or_else(|| json!(["*"]), |ops| json!(ops));
    json!({
        "slug": slug,
        "kind": product.kind,
        "upstream": product.upstream,
        "allowed_origins": product.allowed_origins,
        "operations": operations,
        "rate_limit_per_minute": product.rate_limit_per_minute,
        "daily_cap": product.daily_cap,
        "pass_set_cookie": product.pass_set_cookie,
        "token": token.unwrap_or(Value::Null),
    })
}

/// The experience with its current token and the older tokens still
/// accepted (inside a regeneration grace), all masked.
async fn stored_view(
    state: &AppState,
    instance_id: &str,
    slug: &str,
    product: &Product,
) -> Result<Value, ApiError> {
    let now = state.now();
    let current = match &product.token_id {
        Some(id) => state.store.get_credential(instance_id, id).await?,
        None => None,
    };
    let token = current
        .as_ref()
        .map(|r| serde_json::to_value(CredentialView::new(r, now)))
        .transpose()
        .map_err(ApiError::internal)?;
    let mut view = experience_view(slug, product, token);
    view["previous_tokens"] = previous_tokens(state, instance_id, slug, product).await?;
    Ok(view)
}

async fn previous_tokens(
    state: &AppState,
    instance_id: &str,
    slug: &str,
    product: &Product,
) -> Result<Value, ApiError> {
    let current = product.token_id.as_deref().unwrap_or_default();
    let now = state.now();
    let older = state
        .accepted_experience_tokens(instance_id, slug, current)
        .await?;
    serde_json::to_value(
        older
            .iter()
            .map(|r| CredentialView::new(r, now))
            .collect::<Vec<_>>(),
    )
    .map_err(ApiError::internal)
}

fn curl_example(state: &AppState, slug: &str, product: &Product, token: &str) -> String {
    let operation = product
        .allowed_operations()
        .and_then(|ops| ops.first().cloned())
        .unwrap_or_else(|| "search".to_owned());
    format!(
        "curl -s '{}/prod/{slug}/v1/{operation}' -H 'X-Access-Token: {token}'",
        state.web.public_base_url
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateExperience {
    slug: String,
    #[serde(flatten)]
    settings: ExperienceSettings,
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<CreateExperience>,
) -> Result<HttpResponse, ApiError> {
    let issued = state
        .create_experience(&path, &body.slug, body.settings)
        .await?;
    let (product, token, record) = (&issued.product, &issued.token, &issued.record);
    state
        .admin_changed(
            &record.instance_id,
            AuditEntry::admin("experience.create").target(&body.slug),
        )
        .await;
    let now = state.now();
    let token_json = serde_json::to_value(CredentialView::created(record, token.expose(), now))
        .map_err(ApiError::internal)?;
    let mut view = experience_view(&body.slug, product, Some(token_json));
    view["curl"] = json!(curl_example(&state, &body.slug, product, token.expose()));
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn list(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.usage.flush(state.store.as_ref()).await?;
    let instance = state.load_instance(&path).await?;
    let mut experiences = Vec::new();
    for (slug, product) in &instance.products {
        experiences.push(stored_view(&state, &instance.id, slug, product).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "experiences": experiences })))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn get(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state.usage.flush(state.store.as_ref()).await?;
    let (instance_id, slug) = path.into_inner();
    let instance = state.load_instance(&instance_id).await?;
    let product = product_of(&instance, &slug)?;
    let view = stored_view(&state, &instance.id, &slug, product).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn update(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<ExperienceSettings>,
) -> Result<HttpResponse, ApiError> {
    let (instance_id, slug) = path.into_inner();
    let product = state.update_experience(&instance_id, &slug, body).await?;
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("experience.update").target(&slug),
        )
        .await;
    let view = stored_view(&state, &instance_id, &slug, &product).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn delete(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (instance_id, slug) = path.into_inner();
    state.delete_experience(&instance_id, &slug).await?;
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("experience.delete").target(&slug),
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    #[serde(default)]
    grace_seconds: u64,
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn regenerate_token(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> Result<HttpResponse, ApiError> {
    let grace = Grace::parse(body.grace_seconds)?;
    let (instance_id, slug) = path.into_inner();
    let issued = state
        .regenerate_experience_token(&instance_id, &slug, grace)
        .await?;
    let now = state.now();
    let previous_view = issued
        .previous
        .as_ref()
        .map(|old| serde_json::to_value(CredentialView::new(old, now)))
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or(Value::Null);
    state
        .admin_changed(
            &instance_id,
            AuditEntry::admin("experience.regenerate_token")
                .target(&slug)
                .detail(json!({ "grace_seconds": grace.seconds() })),
        )
        .await;
    let (product, token) = (&issued.product, issued.token.expose());
    let token_json = serde_json::to_value(CredentialView::created(&issued.record, token, now))
        .map_err(ApiError::internal)?;
    let mut view = experience_view(&slug, product, Some(token_json));
    view["previous_token"] = previous_view;
    view["previous_tokens"] = previous_tokens(&state, &instance_id, &slug, product).await?;
    view["curl"] = json!(curl_example(&state, &slug, product, token));
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}
