//! Experiences (SPEC §1, §7): an instance's products with their settings and
//! their static experience tokens (Interakt style). A token is shown once, at
//! creation or regeneration; regenerating with `grace_seconds: 0` (the default)
//! kills the old token at once, a grace keeps both working until it ends.

use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};

use super::secrets::MAX_GRACE_SECONDS;
use super::{flush_usage, load_instance, CredentialView};
use crate::domain::credential::{CredentialKind, ExperienceToken};
use crate::domain::experience::{valid_operation, ExperienceKind};
use crate::domain::instance::{
    valid_slug, valid_upstream, CredentialRecord, CredentialStatus, Instance, Product,
};
use crate::domain::origin::OriginPattern;
use crate::error::ApiError;
use crate::http::audit::AuditEntry;
use crate::http::extract::{present, AdminAuth, JsonBody};
use crate::http::AppState;

const MAX_ORIGINS: usize = 100;
const MAX_RATE_LIMIT: u32 = 1_000_000;

/// Settings of an experience as the admin API takes them. Everything but the
/// upstream is optional; `None` keeps the current value (or the default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperienceSettings {
    upstream: Option<String>,
    kind: Option<ExperienceKind>,
    allowed_origins: Option<Vec<String>>,
    rate_limit_per_minute: Option<u32>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    daily_cap: Option<Option<u32>>,
    /// `null` returns to the kind's defaults.
    #[serde(default, deserialize_with = "present")]
    operations: Option<Option<Vec<String>>>,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

impl ExperienceSettings {
    pub fn upstream_only(upstream: String) -> Self {
        ExperienceSettings {
            upstream: Some(upstream),
            kind: None,
            allowed_origins: None,
            rate_limit_per_minute: None,
            daily_cap: None,
            operations: None,
        }
    }

    /// Applies these settings over `base` (or over the defaults), validating
    /// each; nothing is written until all of them are valid.
    pub fn apply(self, slug: &str, base: Option<&Product>) -> Result<Product, ApiError> {
        if !valid_slug(slug) {
            return Err(invalid(format!(
                "slug {slug:?} must be 1 to 64 characters of a-z, 0-9, - and _"
            )));
        }
        let upstream = match (self.upstream, base) {
            (Some(u), _) => u,
            (None, Some(b)) => b.upstream.clone(),
            (None, None) => return Err(invalid(format!("experience {slug:?} needs an upstream"))),
        };
        if !valid_upstream(&upstream) {
            return Err(invalid(format!(
                "upstream of {slug:?} must be an absolute http(s) URL without credentials"
            )));
        }
        let mut product = base
            .cloned()
            .unwrap_or_else(|| Product::new(upstream.clone()));
        product.upstream = upstream;
        if let Some(kind) = self.kind {
            product.kind = kind;
        }
        if let Some(origins) = self.allowed_origins {
            if origins.len() > MAX_ORIGINS {
                return Err(invalid(format!(
                    "allowed_origins lists at most {MAX_ORIGINS} entries"
                )));
            }
            product.allowed_origins = origins
                .iter()
                .map(|o| {
                    o.parse::<OriginPattern>()
                        .map(|p| p.to_string())
                        .map_err(|e| invalid(format!("allowed origin {o:?} is not valid: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(limit) = self.rate_limit_per_minute {
            if !(1..=MAX_RATE_LIMIT).contains(&limit) {
                return Err(invalid(format!(
                    "rate_limit_per_minute must be between 1 and {MAX_RATE_LIMIT}"
                )));
            }
            product.rate_limit_per_minute = limit;
        }
        if let Some(cap) = self.daily_cap {
            if cap == Some(0) {
                return Err(invalid(
                    "daily_cap must be at least 1, or null for none".into(),
                ));
            }
            product.daily_cap = cap;
        }
        if let Some(operations) = self.operations {
            if let Some(ops) = &operations {
                if ops.is_empty() || ops.iter().any(|o| !valid_operation(o)) {
                    return Err(invalid(
                        "operations must be a non-empty list of a-z, 0-9, - and _ names, or null for the kind's defaults".into(),
                    ));
                }
            }
            product.operations = operations;
        }
        Ok(product)
    }
}

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
        "token": token.unwrap_or(Value::Null),
    })
}

async fn token_view(
    state: &AppState,
    instance_id: &str,
    product: &Product,
) -> Result<Option<Value>, ApiError> {
    let Some(id) = &product.token_id else {
        return Ok(None);
    };
    let record = state.store.get_credential(instance_id, id).await?;
    record
        .map(|r| serde_json::to_value(CredentialView::new(&r, state.now())))
        .transpose()
        .map_err(ApiError::internal)
}

/// Generates an experience token for `slug` and stores it (not yet linked).
pub async fn issue_experience_token(
    state: &AppState,
    instance_id: &str,
    slug: &str,
) -> Result<(ExperienceToken, CredentialRecord), ApiError> {
    let token = ExperienceToken::generate();
    let mut record = CredentialRecord::new(
        instance_id,
        CredentialKind::ExperienceToken,
        state.hasher.hash(token.expose()),
        token.masked(),
        state.now(),
    );
    record.experience = Some(slug.to_owned());
    state.store.insert_credential(&record).await?;
    Ok((token, record))
}

/// Revokes every live experience token of `slug` (when it is deleted).
pub async fn revoke_experience_tokens(
    state: &AppState,
    instance_id: &str,
    slug: &str,
) -> Result<(), ApiError> {
    let now = state.now();
    for record in state
        .store
        .list_credentials(instance_id, CredentialKind::ExperienceToken)
        .await?
    {
        if record.experience.as_deref() == Some(slug)
            && record.status(now) != CredentialStatus::Revoked
        {
            state
                .store
                .revoke_credential(instance_id, &record.id, now)
                .await?;
        }
    }
    Ok(())
}

fn curl_example(state: &AppState, slug: &str, product: &Product, token: &str) -> String {
    let operation = product
        .allowed_operations()
        .and_then(|ops| ops.first().cloned())
        .unwrap_or_else(|| "search".to_owned());
    format!(
        "curl -s '{}/prod/{slug}/v1/{operation}' -H 'X-Access-Token: {token}'",
        state.public_base_url
    )
}

async fn save(state: &AppState, instance: &Instance) -> Result<(), ApiError> {
    if !state.store.update_instance(instance).await? {
        return Err(ApiError::NotFound { what: "instance" });
    }
    Ok(())
}

fn load_product<'a>(instance: &'a Instance, slug: &str) -> Result<&'a Product, ApiError> {
    instance
        .products
        .get(slug)
        .ok_or(ApiError::NotFound { what: "experience" })
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
    let mut product = body.settings.apply(&body.slug, None)?;
    let mut instance = load_instance(&state, &path).await?;
    if instance.products.contains_key(&body.slug) {
        return Err(ApiError::Conflict(format!(
            "experience {:?} already exists; PATCH it instead",
            body.slug
        )));
    }
    let (token, record) = issue_experience_token(&state, &instance.id, &body.slug).await?;
    product.token_id = Some(record.id.clone());
    instance.products.insert(body.slug.clone(), product.clone());
    save(&state, &instance).await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("experience.create").target(&body.slug),
        )
        .await;
    let now = state.now();
    let token_json = serde_json::to_value(CredentialView::created(&record, token.expose(), now))
        .map_err(ApiError::internal)?;
    let mut view = experience_view(&body.slug, &product, Some(token_json));
    view["curl"] = json!(curl_example(&state, &body.slug, &product, token.expose()));
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
    flush_usage(&state).await?;
    let instance = load_instance(&state, &path).await?;
    let mut experiences = Vec::new();
    for (slug, product) in &instance.products {
        let token = token_view(&state, &instance.id, product).await?;
        experiences.push(experience_view(slug, product, token));
    }
    Ok(HttpResponse::Ok().json(json!({ "experiences": experiences })))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn get(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    flush_usage(&state).await?;
    let (instance_id, slug) = path.into_inner();
    let instance = load_instance(&state, &instance_id).await?;
    let product = load_product(&instance, &slug)?;
    let token = token_view(&state, &instance.id, product).await?;
    Ok(HttpResponse::Ok().json(experience_view(&slug, product, token)))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn update(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<ExperienceSettings>,
) -> Result<HttpResponse, ApiError> {
    let (instance_id, slug) = path.into_inner();
    let mut instance = load_instance(&state, &instance_id).await?;
    let product = body.apply(&slug, Some(load_product(&instance, &slug)?))?;
    instance.products.insert(slug.clone(), product.clone());
    save(&state, &instance).await?;
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("experience.update").target(&slug),
        )
        .await;
    let token = token_view(&state, &instance.id, &product).await?;
    Ok(HttpResponse::Ok().json(experience_view(&slug, &product, token)))
}

#[tracing::instrument(skip_all, fields(instance = %path.0, experience = %path.1))]
pub async fn delete(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (instance_id, slug) = path.into_inner();
    let mut instance = load_instance(&state, &instance_id).await?;
    load_product(&instance, &slug)?;
    instance.products.remove(&slug);
    save(&state, &instance).await?;
    revoke_experience_tokens(&state, &instance.id, &slug).await?;
    state
        .admin_changed(
            &instance.id,
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
    if body.grace_seconds > MAX_GRACE_SECONDS {
        return Err(invalid(format!(
            "grace_seconds must be at most {MAX_GRACE_SECONDS}"
        )));
    }
    let (instance_id, slug) = path.into_inner();
    let mut instance = load_instance(&state, &instance_id).await?;
    let mut product = load_product(&instance, &slug)?.clone();
    let now = state.now();
    let (token, record) = issue_experience_token(&state, &instance.id, &slug).await?;
    let previous = product.token_id.replace(record.id.clone());
    instance.products.insert(slug.clone(), product.clone());
    save(&state, &instance).await?;

    let grace = Duration::seconds(i64::try_from(body.grace_seconds).unwrap_or(0));
    let mut previous_view = Value::Null;
    if let Some(old_id) = previous {
        if let Some(old) = state
            .store
            .expire_credential(&instance.id, &old_id, now + grace)
            .await?
        {
            previous_view =
                serde_json::to_value(CredentialView::new(&old, now)).map_err(ApiError::internal)?;
        }
    }
    state
        .admin_changed(
            &instance.id,
            AuditEntry::admin("experience.regenerate_token")
                .target(&slug)
                .detail(json!({ "grace_seconds": body.grace_seconds })),
        )
        .await;
    let token_json = serde_json::to_value(CredentialView::created(&record, token.expose(), now))
        .map_err(ApiError::internal)?;
    let mut view = experience_view(&slug, &product, Some(token_json));
    view["previous_token"] = previous_view;
    view["curl"] = json!(curl_example(&state, &slug, &product, token.expose()));
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}
