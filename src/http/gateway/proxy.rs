//! Proxying an authorized request to its product's upstream: method, path tail,
//! query, headers and body streamed both ways.
//!
//! The caller's credentials (`Authorization`, `x-inbenta-key`,
//! `X-Access-Token`) and any `X-Keybroker-*` header it sent are removed before
//! the gateway adds its own identity headers, so an upstream can trust them.
//! Names are compared with `_` folded into `-`, in any case: CGI and WSGI
//! servers fold both into one `HTTP_X_KEYBROKER_INSTANCE`, so a caller's
//! `x_keybroker_instance` would otherwise pass for the broker's header.
//! `X-Original-URL` and `X-Rewrite-URL` are removed too: some frameworks
//! route by them instead of the path the gateway checked.
//! Hop-by-hop headers are not forwarded in either direction. Redirects are
//! passed back to the caller, never followed.
//!
//! The product's CORS headers and `Server` never reach the caller: the
//! browser must see keybroker's CORS decision alone (a product's
//! `Access-Control-Allow-Credentials: true` beside it would open the
//! product's cookies to any allowed origin). Its `Set-Cookie` passes only
//! for experiences that ask for it, since every product behind the broker
//! shares the broker's origin and so each other's cookies.

use std::sync::Arc;
use std::time::Duration;

use actix_tls::connect::{Connector as TcpConnector, Resolver};
use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::SendRequestError;

use super::resolve::GuardedResolver;
use super::{decorate, error_for, identity, IDENTITY_HEADERS};
use crate::app::gateway::ProductAccess;
use crate::domain::path::split_gateway_path;
use crate::domain::upstream::UpstreamPolicy;
use crate::error::ApiError;

/// The upstream HTTP client of one worker (awc clients are per thread).
pub struct Upstream {
    client: awc::Client,
    timeout: Duration,
    policy: Arc<UpstreamPolicy>,
}

impl Upstream {
    /// A client that holds every connection to `policy`: an upstream URL is
    /// checked again before each request (an upstream stored before the
    /// policy is held to it too), and each address a name resolves to when
    /// the client connects.
    pub fn new(timeout: Duration, policy: Arc<UpstreamPolicy>) -> Self {
        let resolver = Resolver::custom(GuardedResolver::new(policy.clone()));
        let connector = awc::Connector::new().connector(TcpConnector::new(resolver).service());
        let client = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .no_default_headers()
            .timeout(timeout)
            .finish();
        Upstream {
            client,
            timeout,
            policy,
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What the caller sent that must not reach the upstream.
const CREDENTIALS: [&str; 3] = ["authorization", "x-inbenta-key", "x-access-token"];

/// Headers that make IIS and Symfony (and frameworks following them) serve
/// another path than the request line's: the gateway checked the request
/// line, so the upstream must not be told another.
const URL_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// Whether a caller's header is withheld from the upstream: a credential, a
/// URL override, or one the broker sets (its identity headers, and
/// `X-Forwarded-For` under another spelling), compared as a CGI server
/// would after folding `_` into `-` (header names are already lower case).
fn withheld(name: &HeaderName) -> bool {
    let raw = name.as_str();
    let folded = raw.replace('_', "-");
    CREDENTIALS.contains(&folded.as_str())
        || URL_OVERRIDES.contains(&folded.as_str())
        || folded == "x-keybroker"
        || folded.starts_with("x-keybroker-")
        || (folded != raw && folded == "x-forwarded-for")
}

fn is_hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name)
        || headers
            .get_all(header::CONNECTION)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name))
}

/// Whether a product's response header is kept from the caller: its CORS
/// headers (keybroker's own are the only ones, and it never allows
/// credentials), its `Server`, and its cookies unless the experience passes
/// them (`pass_set_cookie`).
fn kept_back(name: &HeaderName, pass_set_cookie: bool) -> bool {
    let name = name.as_str();
    name.starts_with("access-control-")
        || name == "server"
        || (!pass_set_cookie && (name == "set-cookie" || name == "set-cookie2"))
}

#[tracing::instrument(skip_all, fields(product = %access.product))]
pub async fn forward(
    access: ProductAccess,
    upstream: web::Data<Upstream>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    match proxy(&access, &upstream, &req, payload).await {
        Ok(response) => response,
        Err(e) => error_for(&access, e),
    }
}

async fn proxy(
    access: &ProductAccess,
    upstream: &Upstream,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Dot segments were refused when the caller was checked.
    let tail = split_gateway_path(req.path()).map_or("", |(_, rest)| rest);
    let product = access
        .instance
        .products
        .get(&access.product)
        .ok_or_else(|| ApiError::UnknownProduct(access.product.clone()))?;
    if let Err(refused) = upstream.policy.check(&product.upstream) {
        tracing::warn!(error = %refused, "upstream refused by upstreams.allow_private");
        return Err(ApiError::UpstreamUnavailable);
    }
    let base = product.upstream.trim_end_matches('/').to_owned();
    let pass_set_cookie = product.pass_set_cookie;
    let mut url = format!("{base}/{tail}");
    if let Some(query) = req.uri().query() {
        url.push('?');
        url.push_str(query);
    }

    let incoming = req.headers();
    let mut request = upstream
        .client
        .request(req.method().clone(), url)
        .timeout(upstream.timeout);
    for (name, value) in incoming {
        let n = name.as_str();
        if n == "host" || n == "content-length" || withheld(name) || is_hop_by_hop(name, incoming) {
            continue;
        }
        request = request.append_header((name.clone(), value.clone()));
    }
    for (name, value) in identity(access) {
        request = request.insert_header((name, value));
    }
    debug_assert!(IDENTITY_HEADERS.iter().all(withheld));
    if let Some(peer) = req.peer_addr() {
        let forwarded = match incoming
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(earlier) => format!("{earlier}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        request = request.insert_header(("x-forwarded-for", forwarded));
    }

    let declared_length = incoming
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = incoming.contains_key(header::TRANSFER_ENCODING);
    let sent = match (declared_length, chunked) {
        (Some(len), false) => request.send_body(SizedStream::new(len, payload)).await,
        (_, true) => request.send_stream(payload).await,
        (None, false) => request.send().await,
    };
    let upstream_response = sent.map_err(|e| match e {
        SendRequestError::Timeout => ApiError::UpstreamTimeout,
        other => {
            tracing::warn!(error = %other, "upstream request failed");
            ApiError::UpstreamUnavailable
        }
    })?;

    let mut response = HttpResponse::build(upstream_response.status());
    let returned = upstream_response.headers();
    for (name, value) in returned {
        if !is_hop_by_hop(name, returned) && !kept_back(name, pass_set_cookie) {
            response.append_header((name.clone(), value.clone()));
        }
    }
    decorate(access, &mut response);
    Ok(response.streaming(upstream_response))
}
