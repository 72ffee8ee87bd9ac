//! `GET /console` and `/console/{file}`: the admin console (SPEC §11), static
//! files embedded in the binary from `console/`, so that the page always
//! speaks the admin API of the broker that serves it and needs no CDN.
//!
//! The page holds the admin token, so every response carries a strict
//! `Content-Security-Policy`: scripts only from this origin (no inline script,
//! no `eval`), so that a name an operator typed can never run as code even if
//! a bug rendered it as HTML; `connect-src 'self'` so that the token cannot be
//! sent elsewhere; `frame-ancestors 'none'` against clickjacking. `no-referrer`
//! keeps the console's URL out of other sites' logs. `no-cache`: the ETag
//! revalidates every load, so a broker upgrade shows at once.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};

use super::sdk::Asset;
use crate::app::AppState;
use crate::error::ApiError;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file of the console: (name under `/console/`, body, content type).
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", include_str!("../../console/index.html"), HTML),
    (
        "console.css",
        include_str!("../../console/console.css"),
        CSS,
    ),
    ("app.js", include_str!("../../console/app.js"), JS),
    ("api.js", include_str!("../../console/api.js"), JS),
    ("dom.js", include_str!("../../console/dom.js"), JS),
    ("instance.js", include_str!("../../console/instance.js"), JS),
    (
        "credentials.js",
        include_str!("../../console/credentials.js"),
        JS,
    ),
    (
        "experiences.js",
        include_str!("../../console/experiences.js"),
        JS,
    ),
    ("reports.js", include_str!("../../console/reports.js"), JS),
    ("chart.js", include_str!("../../console/chart.js"), JS),
];

static ASSETS: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, body, content_type)| (name, Asset::new(body, content_type)))
        .collect()
});

fn serve(req: &HttpRequest, state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    if !state.web.console_enabled {
        return Err(ApiError::RouteNotFound);
    }
    let Some((_, asset)) = ASSETS.iter().find(|(n, _)| *n == name) else {
        return Err(ApiError::RouteNotFound);
    };
    Ok(asset.respond(
        req,
        &[
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ),
        ],
    ))
}

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, "index.html")
}

pub async fn file(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, &path)
}
