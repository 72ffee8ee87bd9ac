use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use super::{list_views, load_credential, load_instance, revoke_with_tokens, CredentialView};
use crate::domain::credential::{CredentialKind, DomainKey};
use crate::domain::instance::CredentialRecord;
use crate::domain::origin::parse_patterns;
use crate::error::ApiError;
use crate::http::audit::AuditEntry;
use crate::http::extract::{AdminAuth, JsonBody};
use crate::http::AppState;

const MAX_DOMAINS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domains {
    domains: Vec<String>,
}

/// Parses and normalises the domains (lower case, default ports dropped).
fn validate_domains(domains: &[String]) -> Result<Vec<String>, ApiError> {
    if domains.is_empty() || domains.len() > MAX_DOMAINS {
        return Err(ApiError::bad_request(
            "invalid_domain",
            format!("domains must list 1 to {MAX_DOMAINS} entries"),
        ));
    }
    let patterns = parse_patterns(domains).map_err(|(domain, e)| {
        ApiError::bad_request(
            "invalid_domain",
            format!("domain {domain:?} is not valid: {e}"),
        )
    })?;
    Ok(patterns.iter().map(ToString::to_string).collect())
}

/// Creates a domain key that becomes active after `propagation`.
pub async fn issue_domain_key(
    state: &AppState,
    instance_id: &str,
    domains: Vec<String>,
    propagation: Duration,
) -> Result<(DomainKey, CredentialRecord), ApiError> {
    let key = DomainKey::generate();
    let record = CredentialRecord::new_domain_key(
        instance_id,
        state.hasher.hash(key.expose()),
        key.masked(),
        domains,
        propagation,
        state.now(),
    );
    state.store.insert_credential(&record).await?;
    Ok((key, record))
}

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<Domains>,
) -> Result<HttpResponse, ApiError> {
    let domains = validate_domains(&body.domains)?;
    let instance = load_instance(&state, &path).await?;
    let propagation =
        Duration::seconds(i64::try_from(state.propagation_seconds).unwrap_or(i64::MAX / 1000));
    let (key, record) = issue_domain_key(&state, &instance.id, domains, propagation).await?;
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
    let domains = validate_domains(&body.domains)?;
    let (instance_id, id) = path.into_inner();
    load_credential(&state, &instance_id, &id, CredentialKind::DomainKey).await?;
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
    let view = revoke_with_tokens(
        &state,
        &instance_id,
        &id,
        CredentialKind::DomainKey,
        "domain_key.revoke",
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
