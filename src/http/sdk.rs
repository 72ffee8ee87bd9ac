//! `GET /sdk/keybroker.js` and `/sdk/keybroker.d.ts`: the browser and Node SDK
//! (SPEC §10), embedded in the binary so that the SDK a page loads always
//! speaks the protocol of the broker that serves it.
//!
//! Pages load it cross-origin (`<script type="module">` from their own site),
//! so it is served with `Access-Control-Allow-Origin: *`: it is public code
//! and the request carries no credentials. The strong `ETag` is the SHA-256 of
//! the bytes, computed once per process, so a revalidation costs a 304 and no
//! body. `max-age=300`: a broker upgrade reaches every page within five
//! minutes, while a page's own navigations reuse the cached copy; pages that
//! pin the file with an SRI `integrity` hash should pin a copy they host.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use ring::digest;

/// The SDK's source, as shipped in `sdk/`.
pub const KEYBROKER_JS: &str = include_str!("../../sdk/keybroker.js");
/// Its hand-written types.
pub const KEYBROKER_D_TS: &str = include_str!("../../sdk/keybroker.d.ts");

const CACHE_CONTROL: &str = "public, max-age=300";

/// One embedded file and its validator.
pub(super) struct Asset {
    pub(super) body: &'static str,
    pub(super) content_type: &'static str,
    pub(super) etag: String,
}

impl Asset {
    pub(super) fn new(body: &'static str, content_type: &'static str) -> Self {
        let sum = digest::digest(&digest::SHA256, body.as_bytes());
        // 128 bits of the hash: ample to tell versions apart, shorter headers.
        let hex: String = sum.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Asset {
            body,
            content_type,
            etag: format!("\"{hex}\""),
        }
    }
}

static JS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(KEYBROKER_JS, "text/javascript; charset=utf-8"));
// `application/typescript`: what Deno and editors that fetch types over HTTP
// recognise as TypeScript; browsers never execute it.
static D_TS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(KEYBROKER_D_TS, "application/typescript; charset=utf-8"));

/// `If-None-Match` matches when it lists our tag (weak comparison, RFC 9110
/// §13.1.2) or is `*`.
pub(super) fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let unchanged = not_modified(req, &asset.etag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pages that isolate themselves (COEP) may still load it.
        .insert_header((
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ));
    if unchanged {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.body)
}

pub async fn keybroker_js(req: HttpRequest) -> HttpResponse {
    serve(&req, &JS)
}

pub async fn keybroker_d_ts(req: HttpRequest) -> HttpResponse {
    serve(&req, &D_TS)
}
