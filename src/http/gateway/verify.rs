use actix_web::HttpResponse;
use serde_json::json;

use super::ProductAccess;

/// `GET /v1/verify`: 200 with the identity headers when the request described by
/// `X-Original-URI` may pass; otherwise the gateway's error status.
#[tracing::instrument(skip_all, fields(product = %access.product))]
pub async fn verify(access: ProductAccess) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    for (name, value) in access.identity() {
        response.insert_header((name, value));
    }
    access.decorate(&mut response);
    response.json(json!({
        "instance": access.instance.id,
        "product": access.product,
        "kind": access.kind(),
    }))
}
