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
use crate::store::Step;

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
pub struct SeriesQuery {
    /// Unix seconds; default `to` minus one hour (minute steps) or one day.
    from: Option<i64>,
    /// Unix seconds; default now.
    to: Option<i64>,
    step: Option<String>,
}

/// `GET /admin/v1/instances/{id}/usage/series`: counts per step and
/// credential. Steps older than the retention (48 h of minutes, 30 days of
/// hours) are gone, so the range is cut to it; steps without counts are left
/// out.
#[tracing::instrument(skip_all, fields(instance = %path))]
pub async fn usage_series(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let step = match query.step.as_deref().unwrap_or("minute") {
        "minute" => Step::Minute,
        "hour" => Step::Hour,
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "step must be minute or hour, not {other:?}"
            )))
        }
    };
    let now = state.now().timestamp();
    let to = query.to.unwrap_or(now).min(now);
    let default_span = if step == Step::Minute { 3600 } else { 86_400 };
    let from = query.from.unwrap_or(to.saturating_sub(default_span));
    if from > to {
        return Err(ApiError::InvalidRequest(
            "from must not be after to (both unix seconds)".into(),
        ));
    }
    // Any i64 is a valid query; near i64::MIN neither `to - span` nor a
    // step's start is. A range that ends before the retention is empty, so
    // its end is cut to the step before what is kept.
    let oldest = now - step.retention_seconds();
    let (from, to) = (
        step.bucket(from.max(oldest)),
        step.bucket(to.max(oldest - step.seconds())),
    );
    let instance = state.load_instance(&path).await?;
    state.usage.flush(state.store.as_ref()).await?;
    let series = state
        .store
        .usage_series(&instance.id, step, from, to)
        .await?;
    let at = |t: i64| Utc.timestamp_opt(t, 0).single().map(rfc3339);
    let buckets: Vec<Value> = series
        .iter()
        .map(|(start, usage)| {
            let mut total = serde_json::Map::new();
            let credentials: serde_json::Map<String, Value> = usage
                .iter()
                .map(|(credential, counters)| {
                    let counts: serde_json::Map<String, Value> =
                        [AUTH_OK, AUTH_FAILED, REQUESTS, RATE_LIMITED]
                            .iter()
                            .map(|name| {
                                let n = counters.get(*name).copied().unwrap_or(0);
                                let sum = total.get(*name).and_then(Value::as_i64).unwrap_or(0) + n;
                                total.insert((*name).to_owned(), json!(sum));
                                ((*name).to_owned(), json!(n))
                            })
                            .collect();
                    (credential.clone(), Value::Object(counts))
                })
                .collect();
            json!({ "t": start, "at": at(*start), "credentials": credentials, "total": total })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "step": step.name(),
        "step_seconds": step.seconds(),
        "from": from,
        "to": to,
        "buckets": buckets,
    })))
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
    // Any u64 is a valid offset (past the end it reads nothing): no overflow.
    // Counted in stored entries, so one that does not parse is not read again.
    let next = page.offset.saturating_add(raw.len());
    Ok(HttpResponse::Ok().json(json!({
        "entries": entries,
        "offset": page.offset,
        "limit": limit,
        "total": total,
        "next_offset": (next < total).then_some(next),
    })))
}
