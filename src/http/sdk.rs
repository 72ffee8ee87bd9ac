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

use actix_web::http::header::{self, HeaderName, HeaderValue};
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

    /// The file, or `304 Not Modified` when the request's `If-None-Match`
    /// holds its tag; `headers` go on either answer, with the `ETag`.
    pub(super) fn respond(
        &self,
        req: &HttpRequest,
        headers: &[(HeaderName, &'static str)],
    ) -> HttpResponse {
        let unchanged = not_modified(req, &self.etag);
        let mut response = if unchanged {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response.insert_header((header::ETAG, self.etag.as_str()));
        for (name, value) in headers {
            response.insert_header((name.clone(), HeaderValue::from_static(value)));
        }
        if unchanged {
            return response.finish();
        }
        response.content_type(self.content_type).body(self.body)
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
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    asset.respond(
        req,
        &[
            (header::CACHE_CONTROL, CACHE_CONTROL),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Pages that isolate themselves (COEP) may still load it.
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
    )
}

pub async fn keybroker_js(req: HttpRequest) -> HttpResponse {
    serve(&req, &JS)
}

pub async fn keybroker_d_ts(req: HttpRequest) -> HttpResponse {
    serve(&req, &D_TS)
}
