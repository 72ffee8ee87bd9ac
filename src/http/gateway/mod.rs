//! The product gateway (SPEC §4): `ANY /prod/{product}/{path…}` checks the
//! caller and proxies to the product's upstream; `GET /v1/verify` runs the same
//! checks for a reverse proxy's sub-request (nginx `auth_request`, Traefik
//! ForwardAuth) and proxies nothing.
//!
//! Two kinds of caller reach a product:
//! - an access token (`Authorization: Bearer <JWT>` with `x-inbenta-key`),
//!   checked by [`authorize`];
//! - an experience token (`X-Access-Token: kb_xt_…`, or as the bearer), valid
//!   for its one experience, with no API key needed.
//!
//! Either way the operation must be one the experience allows, a browser's
//! Origin must be allowed, nothing may be revoked, and then the rate limits
//! apply: per credential (session or experience token) and client IP per
//! minute, and per credential per day when a cap is set, counted atomically in
//! the store in one call so that every broker process shares one count.

pub mod proxy;
pub mod verify;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;

use super::access::{check_allowed_origins, check_origin, check_product, Presented};
use super::cache::CachedInstance;
use super::cors;
use super::extract::{app_state, client_ip, parse_api_key};
use super::usage::{RATE_LIMITED, REQUESTS};
use super::AppState;
use crate::domain::credential::{CredentialKind, ExperienceToken};
use crate::domain::experience::operation_of;
use crate::domain::instance::{CredentialRecord, Instance, Product};
use crate::domain::network::limit_key;
use crate::error::ApiError;
use crate::store::{Caller, GatewayCheck, Window};
use crate::tokens::{Claims, TokenError};

/// Headers the gateway adds for the upstream; callers can never set them.
pub const IDENTITY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-keybroker-instance"),
    HeaderName::from_static("x-keybroker-subject-kind"),
    HeaderName::from_static("x-keybroker-token-id"),
];

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Who is calling a product.
#[derive(Debug, Clone)]
pub enum Subject {
    Token(Arc<Claims>),
    Experience(Arc<CredentialRecord>),
}

/// Where the caller stands against its per-minute limit.
#[derive(Debug, Clone, Copy)]
pub struct RateStatus {
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

/// A caller that passed every check for one product.
#[derive(Debug)]
pub struct ProductAccess {
    pub instance: Arc<Instance>,
    pub product: String,
    pub subject: Subject,
    /// The request's Origin, once the credential allowed it.
    pub origin: Option<String>,
    pub rate: RateStatus,
    /// An experience token inside its rotation grace dies then.
    pub sunset: Option<DateTime<Utc>>,
}

impl ProductAccess {
    pub fn kind(&self) -> &'static str {
        match &self.subject {
            Subject::Token(claims) => claims.kind.as_str(),
            Subject::Experience(_) => "experience",
        }
    }

    pub fn token_id(&self) -> &str {
        match &self.subject {
            Subject::Token(claims) => &claims.jti,
            Subject::Experience(record) => &record.id,
        }
    }

    /// The identity headers and their values.
    pub fn identity(&self) -> [(HeaderName, &str); 3] {
        let [instance, kind, token_id] = IDENTITY_HEADERS;
        [
            (instance, self.instance.id.as_str()),
            (kind, self.kind()),
            (token_id, self.token_id()),
        ]
    }

    /// Rate-limit, CORS and deprecation headers for the caller.
    pub fn decorate(&self, response: &mut HttpResponseBuilder) {
        response.insert_header((RATELIMIT_LIMIT, HeaderValue::from(self.rate.limit)));
        response.insert_header((RATELIMIT_REMAINING, HeaderValue::from(self.rate.remaining)));
        response.insert_header((RATELIMIT_RESET, HeaderValue::from(self.rate.reset_seconds)));
        if let Some(origin) = &self.origin {
            cors::allow_origin(response, origin);
        }
        if let Some(sunset) = self.sunset {
            response.insert_header(("Deprecation", "true"));
            response.insert_header((
                "Sunset",
                sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ));
        }
    }
}

/// The product of a gateway path, `/prod/{product}/{rest}`, and the raw rest.
pub fn split_gateway_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/prod/")?.split_once('/')
}

/// The product and the rest of an original URI seen by a reverse proxy: the
/// first path segment after an optional `/prod` prefix, then the others.
pub fn split_original_uri(uri: &str) -> Option<(&str, &str)> {
    let path = uri.split(['?', '#']).next()?;
    let path = path
        .strip_prefix("/prod/")
        .unwrap_or(path.strip_prefix('/')?);
    let (product, rest) = path.split_once('/').unwrap_or((path, ""));
    (!product.is_empty()).then_some((product, rest))
}

/// Refuses `.` and `..` segments, also when dots or separators are
/// percent-encoded or written as backslashes: an upstream that decodes them
/// would let a caller climb out of the product's base path.
pub fn check_path(tail: &str) -> Result<(), ApiError> {
    let decoded = tail
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(ApiError::InvalidPath);
    }
    Ok(())
}

fn header_text(req: &HttpRequest, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        req.headers()
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The experience token of a request, if it carries one.
fn experience_token(req: &HttpRequest, presented: &Presented) -> Option<String> {
    header_text(req, &["x-access-token"]).or_else(|| {
        presented
            .token
            .as_ref()
            .filter(|t| t.starts_with(CredentialKind::ExperienceToken.prefix()))
            .cloned()
    })
}

struct Facts {
    presented: Presented,
    experience_token: Option<String>,
    product: Option<String>,
    ip: IpAddr,
}

impl FromRequest for ProductAccess {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = match app_state(req) {
            Ok(state) => state,
            Err(missing) => return Box::pin(async move { Err(missing.into()) }),
        };
        // The whole path is checked for dot segments: behind a reverse proxy,
        // `/search/../chat/x` names `search` here but reaches `chat` upstream.
        let (target, path_ok) = if req.path().starts_with("/prod/") {
            let target = split_gateway_path(req.path());
            let ok = target.is_none_or(|(_, rest)| check_path(rest).is_ok());
            (target.map(|(p, rest)| (p.to_owned(), rest.to_owned())), ok)
        } else {
            let uri = header_text(req, &["x-original-uri", "x-forwarded-uri"]);
            let path = uri
                .as_deref()
                .map(|u| u.split(['?', '#']).next().unwrap_or(""));
            let ok = path.is_none_or(|p| check_path(p).is_ok());
            let target = uri
                .as_deref()
                .and_then(split_original_uri)
                .map(|(p, rest)| (p.to_owned(), rest.to_owned()));
            (target, ok)
        };
        if !path_ok {
            return Box::pin(async { Err(ApiError::InvalidPath.into()) });
        }
        let (product, operation) = match target {
            Some((p, rest)) => (Some(p), Some(operation_of(&rest).to_owned())),
            None => (None, None),
        };
        let mut presented = Presented::from_request(req);
        presented.operation = operation;
        let facts = Facts {
            experience_token: experience_token(req, &presented),
            presented,
            product,
            ip: client_ip(req, &state),
        };
        Box::pin(async move { check_access(&state, facts).await })
    }
}

/// The caller as identified before the store call, from caches where possible.
struct Identified {
    instance: CachedInstance,
    subject: Subject,
    /// Whether `instance` came from the cache (and so may be stale).
    cached: bool,
}

async fn check_access(state: &AppState, facts: Facts) -> Result<ProductAccess, actix_web::Error> {
    let slug = facts.product.clone().ok_or_else(|| {
        ApiError::bad_request(
            "missing_original_uri",
            "X-Original-URI (or X-Forwarded-Uri) must name the product: /prod/{product}/… or /{product}/…",
        )
    })?;
    let now = state.now();
    let presented = &facts.presented;
    let mut identified = match &facts.experience_token {
        Some(raw) => identify_experience(state, raw, &slug).await?,
        None => identify_token(state, presented).await?,
    };
    // A refusal on cached configuration is re-checked on fresh configuration.
    if let Err(e) = config_checks(&identified, &slug, presented) {
        if !identified.cached {
            return Err(e.into());
        }
        identified = reload(state, identified, presented).await?;
        config_checks(&identified, &slug, presented)?;
    }

    let rate_subject = match &identified.subject {
        Subject::Token(claims) => format!("sid:{}", claims.sid),
        Subject::Experience(record) => format!("xt:{}", record.id),
    };
    let windows = windows_for(
        &identified.instance.instance,
        &slug,
        &rate_subject,
        facts.ip,
        now,
    );
    let caller = match &identified.subject {
        Subject::Token(claims) => Caller::Token {
            jti: &claims.jti,
            sid: &claims.sid,
            credential_id: &claims.cred,
        },
        Subject::Experience(record) => Caller::Experience {
            credential_id: &record.id,
        },
    };
    let instance_id = identified.instance.instance.id.clone();
    let checked = state
        .store
        .gateway_check(GatewayCheck {
            instance_id: &instance_id,
            caller,
            windows: &windows,
        })
        .await
        .map_err(ApiError::from)?;

    // The configuration changed since it was cached: decide on fresh data.
    if checked.epoch != identified.instance.epoch {
        identified = reload(state, identified, presented).await?;
        config_checks(&identified, &slug, presented)?;
    }

    let mut sunset = None;
    match &identified.subject {
        Subject::Token(claims) => {
            if checked.revocations.revokes(claims.iat, now.timestamp()) {
                return Err(ApiError::TokenRevoked.into());
            }
        }
        Subject::Experience(_) => {
            if !checked.credential_exists {
                return Err(ApiError::InvalidToken(TokenError::Invalid).into());
            }
            match checked.credential_dead_at {
                Some(t) if t <= now => return Err(ApiError::TokenRevoked.into()),
                Some(t) => sunset = Some(t),
                None => {}
            }
        }
    }

    let credential_id = match &identified.subject {
        Subject::Token(claims) => claims.cred.clone(),
        Subject::Experience(record) => record.id.clone(),
    };
    let product = identified
        .instance
        .instance
        .products
        .get(&slug)
        .ok_or_else(|| ApiError::UnknownProduct(slug.clone()))?;
    let now_s = now.timestamp();
    match rate_decision(product, &windows, &checked.counts) {
        Ok(rate) => {
            state
                .usage
                .count(&instance_id, &credential_id, REQUESTS, now_s);
            Ok(ProductAccess {
                instance: identified.instance.instance,
                product: slug,
                subject: identified.subject,
                origin: presented.origin.clone(),
                rate,
                sunset,
            })
        }
        Err(e) => {
            state
                .usage
                .count(&instance_id, &credential_id, RATE_LIMITED, now_s);
            // The origin was allowed: let the browser read the 429.
            let mut response = e.error_response();
            if let Some(origin) = &presented.origin {
                cors::allow_origin_on(&mut response, origin);
            }
            Err(InternalError::from_response(e, response).into())
        }
    }
}

/// An access token: signature and claims (cached verification), then the
/// instance of the API key.
async fn identify_token(state: &AppState, presented: &Presented) -> Result<Identified, ApiError> {
    let token = presented.token.as_deref().ok_or(ApiError::MissingToken)?;
    let claims = state.tokens.verify(token, state.now())?;
    let api_key = parse_api_key(presented.api_key.as_deref())?;
    let instance = state
        .instances
        .by_api_key(state.store.as_ref(), api_key.expose(), false)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(Identified {
        instance,
        subject: Subject::Token(claims),
        cached: true,
    })
}

/// An experience token: well-formed, genuine, for this experience.
async fn identify_experience(
    state: &AppState,
    raw: &str,
    slug: &str,
) -> Result<Identified, ApiError> {
    let invalid = ApiError::InvalidToken;
    let token: ExperienceToken = raw
        .trim()
        .parse()
        .map_err(|_| invalid(TokenError::Malformed))?;
    let hash = state.hasher.hash(token.expose());
    let record = match state.credentials.get(&hash) {
        Some(record) => record,
        None => {
            let record = state.store.credential_by_hash(&hash).await?;
            let genuine = state
                .hasher
                .verify(token.expose(), record.as_ref().map(|r| &r.hash));
            let record = record
                .filter(|r| genuine && r.kind == CredentialKind::ExperienceToken)
                .ok_or(invalid(TokenError::Invalid))?;
            state.credentials.insert(record)
        }
    };
    if record.experience.as_deref() != Some(slug) {
        return Err(ApiError::ExperienceMismatch);
    }
    let instance = state
        .instances
        .by_id(state.store.as_ref(), &record.instance_id, false)
        .await?
        .ok_or(invalid(TokenError::Invalid))?;
    Ok(Identified {
        instance,
        subject: Subject::Experience(record),
        cached: true,
    })
}

/// The same caller on freshly loaded configuration.
async fn reload(
    state: &AppState,
    identified: Identified,
    presented: &Presented,
) -> Result<Identified, ApiError> {
    let store = state.store.as_ref();
    let instance = match &identified.subject {
        Subject::Token(_) => {
            let api_key = presented.api_key.as_deref().unwrap_or_default().trim();
            state
                .instances
                .by_api_key(store, api_key, true)
                .await?
                .ok_or(ApiError::InvalidCredentials)?
        }
        Subject::Experience(record) => state
            .instances
            .by_id(store, &record.instance_id, true)
            .await?
            .ok_or(ApiError::InvalidToken(TokenError::Invalid))?,
    };
    Ok(Identified {
        instance,
        subject: identified.subject,
        cached: false,
    })
}

/// Every check that depends on configuration, in the gateway order.
fn config_checks(
    identified: &Identified,
    slug: &str,
    presented: &Presented,
) -> Result<(), ApiError> {
    let instance = &identified.instance.instance;
    let origin = presented.origin.as_deref();
    match &identified.subject {
        Subject::Token(claims) => {
            if claims.sub != instance.id {
                return Err(ApiError::InstanceMismatch);
            }
            check_product(instance, slug, presented.operation.as_deref())?;
            check_origin(claims, origin)?;
        }
        Subject::Experience(_) => {
            if let Some(api_key) = &presented.api_key {
                if api_key.trim() != instance.api_key {
                    return Err(ApiError::InstanceMismatch);
                }
            }
            check_product(instance, slug, presented.operation.as_deref())?;
        }
    }
    check_allowed_origins(instance, slug, origin)
}

fn ceil_seconds(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(0)
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// The fixed windows this request counts in: per subject and client IP per
/// minute, and per subject per day when the experience has a cap.
fn windows_for(
    instance: &Instance,
    slug: &str,
    subject: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Vec<Window> {
    let Some(product) = instance.products.get(slug) else {
        return Vec::new();
    };
    let now_ms = now.timestamp_millis();
    let minute = now_ms.div_euclid(MINUTE_MS);
    let mut windows = vec![Window {
        suffix: format!("m:{slug}:{subject}:{}:{minute}", limit_key(ip)),
        limit: u64::from(product.rate_limit_per_minute),
        ttl_ms: (minute + 1) * MINUTE_MS - now_ms,
    }];
    if let Some(cap) = product.daily_cap {
        let day = now_ms.div_euclid(DAY_MS);
        windows.push(Window {
            suffix: format!("d:{slug}:{subject}:{day}"),
            limit: u64::from(cap),
            ttl_ms: (day + 1) * DAY_MS - now_ms,
        });
    }
    windows
}

/// Decides on the counts the store returned, with the product's current limits.
fn rate_decision(
    product: &Product,
    windows: &[Window],
    counts: &[u64],
) -> Result<RateStatus, ApiError> {
    let per_minute = u64::from(product.rate_limit_per_minute);
    let minute_left = windows.first().map_or(0, |w| w.ttl_ms);
    let used = counts.first().copied().unwrap_or(0);
    if used > per_minute {
        return Err(ApiError::RateLimited {
            window: "minute",
            limit: per_minute,
            retry_after: ceil_seconds(minute_left),
        });
    }
    if let (Some(cap), Some(&day_used), Some(day)) =
        (product.daily_cap, counts.get(1), windows.get(1))
    {
        if day_used > u64::from(cap) {
            return Err(ApiError::RateLimited {
                window: "day",
                limit: u64::from(cap),
                retry_after: ceil_seconds(day.ttl_ms),
            });
        }
    }
    Ok(RateStatus {
        limit: per_minute,
        remaining: per_minute.saturating_sub(used),
        reset_seconds: ceil_seconds(minute_left),
    })
}

/// An error answered after the caller's origin was allowed keeps its CORS
/// headers, so a browser can read it.
pub fn error_for(access: &ProductAccess, error: ApiError) -> HttpResponse {
    let mut response = error.error_response();
    if let Some(origin) = &access.origin {
        cors::allow_origin_on(&mut response, origin);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_refused() {
        for bad in [
            "..",
            "a/../b",
            "%2e%2e/admin",
            "a/%2E/b",
            ".",
            "..%2F..%2Fadmin",
            "a\\..\\b",
            "/search/../chat/x",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for ok in [
            "",
            "v1/search",
            "a..b/c",
            "documents/42",
            "a%2Fb",
            "a\\b",
            "/search/v1/x",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn gateway_paths() {
        assert_eq!(
            split_gateway_path("/prod/search/v1/search"),
            Some(("search", "v1/search"))
        );
        assert_eq!(split_gateway_path("/prod/search/"), Some(("search", "")));
        assert_eq!(split_gateway_path("/prod/search"), None);
    }

    #[test]
    fn original_uris() {
        assert_eq!(
            split_original_uri("/prod/search/v1/search?q=a"),
            Some(("search", "v1/search"))
        );
        assert_eq!(
            split_original_uri("/chat/v1/chat"),
            Some(("chat", "v1/chat"))
        );
        assert_eq!(split_original_uri("/chat"), Some(("chat", "")));
        assert_eq!(split_original_uri("/"), None);
        assert_eq!(split_original_uri("search"), None);
    }
}
