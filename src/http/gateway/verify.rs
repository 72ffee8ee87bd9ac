use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{decorate, identity};
use crate::app::gateway::ProductAccess;
use crate::app::AppState;

/// `GET /v1/verify`: 200 with the identity headers when the request described by
/// the configured URI header (`X-Original-URI` by default) and its method
/// header (`X-Original-Method`) may pass; otherwise the gateway's error
/// status. The method is reported and logged; no check depends on it.
#[tracing::instrument(skip_all, fields(product = %access.product, method))]
pub async fn verify(
    access: ProductAccess,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> HttpResponse {
    let method = state
        .verify
        .method_header
        .as_deref()
        .and_then(|h| req.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_uppercase);
    if let Some(m) = &method {
        tracing::Span::current().record("method", m.as_str());
    }
    let mut response = HttpResponse::Ok();
    for (name, value) in identity(&access) {
        response.insert_header((name, value));
    }
    decorate(&access, &mut response);
    response.json(json!({
        "instance": access.instance.id,
        "product": access.product,
        "kind": access.kind(),
        "method": method,
    }))
}
