//! Usage per credential and the audit log of an instance.

use actix_web::{web, HttpResponse};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::rfc3339;
use crate::app::usage::{AUTH_FAILED, AUTH_OK, LAST_USED_AT, RATE_LIMITED, REQUESTS};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::extract::AdminAuth;

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn usage(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let instance = state.load_instance(&path).await?;
    state.usage.flush(state.store.as_ref()).await?;
    let usage = state.store.usage(&instance.id).await?;
    let credentials: Vec<Value> = usage
        .iter()
        .map(|(credential, counters)| {
            let count = |name: &str| counters.get(name).copied().unwrap_or(0);
            let last_used = counters
                .get(LAST_USED_AT)
                .and_then(|s| Utc.timestamp_opt(*s, 0).single())
                .map(rfc3339);
            json!({
                "credential_id": credential,
                AUTH_OK: count(AUTH_OK),
                AUTH_FAILED: count(AUTH_FAILED),
                REQUESTS: count(REQUESTS),
                RATE_LIMITED: count(RATE_LIMITED),
                LAST_USED_AT: last_used,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "credentials": credentials })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

pub const MAX_PAGE: usize = 200;

#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn audit(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let instance = state.load_instance(&path).await?;
    state.audit_buffer.flush(state.store.as_ref()).await;
    let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let (raw, total) = state.store.audit(&instance.id, page.offset, limit).await?;
    let entries: Vec<Value> = raw
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let next = page.offset + entries.len();
    Ok(HttpResponse::Ok().json(json!({
        "entries": entries,
        "offset": page.offset,
        "limit": limit,
        "total": total,
        "next_offset": (next < total).then_some(next),
    })))
}
