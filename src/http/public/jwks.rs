use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::app::AppState;

/// `GET /.well-known/jwks.json`: every key that is next, active or retired
/// (SPEC §12). The `ETag` is strong: a hash of the exact body, so a verifier
/// revalidating with `If-None-Match` gets a 304 until the key set changes.
/// `max-age` is shorter than the publish lead (checked at start-up), so a
/// verifier that caches the set has the next key before it signs.
#[tracing::instrument(skip_all)]
pub async fn jwks(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let body = state.tokens.jwks(state.now()).to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    use base64::Engine;
    let etag = format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );
    let cache_control = format!("public, max-age={}", state.signing.jwks_max_age_seconds);
    let matches = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag.as_str())
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if matches {
        response.finish()
    } else {
        response.content_type("application/json").body(body)
    }
}
