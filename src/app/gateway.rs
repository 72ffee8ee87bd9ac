//! The checks of a product request (SPEC §4), for the gateway
//! (`ANY /prod/{product}/{path…}`) and forward auth (`GET /v1/verify`).
//!
//! Two kinds of caller reach a product:
//! - an access token (`Authorization: Bearer <JWT>` with `x-inbenta-key`);
//! - an experience token (`X-Access-Token: kb_xt_…`, or as the bearer), valid
//!   for its one experience, with no API key needed.
//!
//! Either way the operation must be one the experience allows, a browser's
//! Origin must be allowed, nothing may be revoked, and then the rate limits
//! apply: per credential (session or experience token) and client IP per
//! minute, and per credential per day when a cap is set, counted atomically in
//! the store in one call ([`Store::gateway_check`](crate::store::Store)) so
//! that every broker process shares one count.
//!
//! Configuration comes from the per-process caches; the store call returns
//! the instance's epoch, and a refusal on cached configuration, or an epoch
//! that moved, is decided again on fresh configuration. On a store shared
//! by several processes, the store call is skipped while everything it
//! would say is known locally (`hot_path.rs`): revocations and the epoch
//! from the feed-fed view, rate-limit units from quota leases.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::access::{check_allowed_origins, check_origin, check_product, parse_api_key, Presented};
use super::cache::CachedInstance;
use super::limits::{rate_decision, windows_for, RateStatus};
use super::usage::{RATE_LIMITED, REQUESTS};
use super::AppState;
use crate::domain::credential::{CredentialKind, ExperienceToken};
use crate::domain::instance::{CredentialRecord, Instance};
use crate::error::ApiError;
use crate::store::counters::RateSubject;
use crate::store::{Caller, GatewayCheck, GatewayState, Window};
use crate::tokens::{Claims, TokenError};

/// What a product request presents, taken from it before any check.
pub struct ProductRequest {
    pub presented: Presented,
    /// An experience token (`X-Access-Token`, or a `kb_xt_` bearer).
    pub experience_token: Option<String>,
    /// The product the path names; `None` when `/v1/verify` was not told.
    pub product: Option<String>,
    pub ip: IpAddr,
}

/// A refusal, and whether the caller's origin was allowed before it (so that
/// the browser may read it).
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub origin: Option<String>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            origin: None,
        }
    }
}

/// Whether an experience token is what the bearer carries.
pub fn is_experience_token(bearer: &str) -> bool {
    bearer.starts_with(CredentialKind::ExperienceToken.prefix())
}

/// Who is calling a product.
#[derive(Debug, Clone)]
pub enum Subject {
    Token(Arc<Claims>),
    Experience(Arc<CredentialRecord>),
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
}

/// The caller as identified before the store call, from caches where possible.
struct Identified {
    instance: CachedInstance,
    subject: Subject,
    /// Whether `instance` came from the cache (and so may be stale).
    cached: bool,
}

/// Every check of a product request, in the SPEC §4 order; the first failure
/// answers.
pub async fn check_product_request(
    state: &AppState,
    facts: ProductRequest,
) -> Result<ProductAccess, Refusal> {
    let slug = facts
        .product
        .clone()
        .ok_or_else(|| ApiError::MissingOriginalUri(state.verify.uri_header.clone()))?;
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

    let (mut windows, mut checked, leased) =
        store_state(state, &identified, &slug, facts.ip, now).await?;

    // The configuration changed since it was cached: decide on fresh data.
    if checked.epoch != identified.instance.epoch {
        identified = reload(state, identified, presented).await?;
        config_checks(&identified, &slug, presented)?;
        // Leases are tied to the limits they were taken under: take them
        // again under the fresh ones.
        if leased {
            (windows, checked, _) = store_state(state, &identified, &slug, facts.ip, now).await?;
        }
    }
    let instance_id = identified.instance.instance.id.clone();

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
            Err(Refusal {
                error: e,
                origin: presented.origin.clone(),
            })
        }
    }
}

/// The rate-limit windows of the request, and what the store says (or would
/// say, see `hot_path.rs`) of it; whether leases were used.
async fn store_state(
    state: &AppState,
    identified: &Identified,
    slug: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<(Vec<Window>, GatewayState, bool), ApiError> {
    let (rate_subject, caller, claims) = match &identified.subject {
        Subject::Token(claims) => (
            RateSubject::Session(&claims.sid),
            Caller::Token {
                jti: &claims.jti,
                sid: &claims.sid,
                credential_id: &claims.cred,
            },
            Some(claims.as_ref()),
        ),
        Subject::Experience(record) => (
            RateSubject::ExperienceToken(&record.id),
            Caller::Experience {
                credential_id: &record.id,
            },
            None,
        ),
    };
    let windows = windows_for(&identified.instance.instance, slug, rate_subject, ip, now);
    let (checked, leased) = state
        .product_state(
            GatewayCheck {
                instance_id: &identified.instance.instance.id,
                caller,
                windows: &windows,
            },
            claims,
            identified.instance.epoch,
        )
        .await?;
    Ok((windows, checked, leased))
}

/// An access token: signature and claims (cached verification), then the
/// instance of the API key.
async fn identify_token(state: &AppState, presented: &Presented) -> Result<Identified, ApiError> {
    let token = presented.token.as_deref().ok_or(ApiError::MissingToken)?;
    let claims = state.tokens.verify(token, state.now())?;
    let api_key = parse_api_key(presented.api_key.as_deref())?;
    let instance = state
        .caches
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
    let record = match state.caches.experience_tokens.get(&hash) {
        Some(record) => record,
        None => {
            let record = state.store.credential_by_hash(&hash).await?;
            let genuine = state
                .hasher
                .verify(token.expose(), record.as_ref().map(|r| &r.hash));
            let record = record
                .filter(|r| genuine && r.kind == CredentialKind::ExperienceToken)
                .ok_or(invalid(TokenError::Invalid))?;
            state.caches.experience_tokens.insert(record)
        }
    };
    if record.experience.as_deref() != Some(slug) {
        return Err(ApiError::ExperienceMismatch);
    }
    let instance = state
        .caches
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
                .caches
                .instances
                .by_api_key(store, api_key, true)
                .await?
                .ok_or(ApiError::InvalidCredentials)?
        }
        Subject::Experience(record) => state
            .caches
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
