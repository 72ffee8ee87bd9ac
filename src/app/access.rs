//! The access-token checks, in the order SPEC §4 gives:
//!
//! token present and well-formed → signature and claims (pinned algorithm,
//! issuer, audience, `exp`/`nbf` with leeway) → the API key's instance is the
//! token's → the product exists on it and allows the operation → Origin rules
//! for the token's kind and the experience's allowed origins → revocation
//! lists. (The gateway then applies the rate limits.)
//!
//! [`AppState::authorize`] runs them, reading the store directly, for the
//! routes that are not about one product (`/v1/refreshToken`, `/v1/apis`).
//! The gateway and forward-auth run the same checks on their fast path
//! (`app/gateway.rs`), with the product ones in between.
//!
//! The first failure answers. A store failure is a 503: the broker fails
//! closed, it never lets a token through unchecked.

use std::sync::Arc;

use super::revocation_view::Lookup;
use super::AppState;
use crate::domain::credential::ApiKey;
use crate::domain::instance::{Instance, Product};
use crate::domain::origin::{Origin, OriginPattern};
use crate::error::ApiError;
use crate::tokens::{Claims, TokenKind};

/// What a request presents, copied out of it so that checking can run in a
/// `'static` future.
#[derive(Debug, Default, Clone)]
pub struct Presented {
    pub token: Option<String>,
    pub api_key: Option<String>,
    pub origin: Option<String>,
    /// The operation asked of the product (gateway routes only).
    pub operation: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct Access {
    pub instance: Arc<Instance>,
    pub claims: Arc<Claims>,
}

/// The `x-inbenta-key` header as an API key: absent is `missing_api_key`, any
/// malformed value the uniform `invalid_credentials`.
pub fn parse_api_key(raw: Option<&str>) -> Result<ApiKey, ApiError> {
    raw.ok_or(ApiError::MissingApiKey)?
        .trim()
        .parse()
        .map_err(|_| ApiError::InvalidCredentials)
}

impl AppState {
    /// Every check of an access token for a route that is not about one
    /// product, in the SPEC §4 order.
    pub async fn authorize(&self, presented: Presented) -> Result<Access, ApiError> {
        let now = self.now();
        let token = presented.token.ok_or(ApiError::MissingToken)?;
        let claims = self.tokens.verify(&token, now)?;

        let api_key = parse_api_key(presented.api_key.as_deref())?;
        let instance = self
            .caches
            .instances
            .current_by_api_key(self.store.as_ref(), api_key.expose())
            .await?
            .ok_or(ApiError::InvalidCredentials)?;
        if claims.sub != instance.id {
            return Err(ApiError::InstanceMismatch);
        }
        check_origin(&claims, presented.origin.as_deref())?;
        self.check_revocations(&claims).await?;
        Ok(Access { instance, claims })
    }

    /// The revocation lists' verdict on the token, from the local view while
    /// its feed is live (see `revocation_view.rs`), else from the store.
    pub async fn check_revocations(&self, claims: &Claims) -> Result<(), ApiError> {
        let now = self.now().timestamp();
        let revocations = match self.revocations.lookup(claims) {
            Lookup::Known(revocations) => {
                self.metrics.revocation_view_hit();
                revocations
            }
            Lookup::Ask(ticket) => {
                self.metrics.revocation_view_miss();
                let revocations = self
                    .store
                    .revocations(&claims.sub, &claims.jti, &claims.sid, &claims.cred)
                    .await?;
                if let Some(ticket) = ticket {
                    self.revocations.remember(ticket, claims, &revocations, now);
                }
                revocations
            }
        };
        if revocations.revokes(claims.iat, now) {
            return Err(ApiError::TokenRevoked);
        }
        Ok(())
    }
}

/// The product exists on the instance and allows the operation.
pub fn check_product<'a>(
    instance: &'a Instance,
    slug: &str,
    operation: Option<&str>,
) -> Result<&'a Product, ApiError> {
    let product = instance
        .products
        .get(slug)
        .ok_or_else(|| ApiError::UnknownProduct(slug.to_owned()))?;
    if let Some(op) = operation {
        if !product.allows_operation(op) {
            return Err(ApiError::OperationNotAllowed(op.to_owned()));
        }
    }
    Ok(product)
}

/// A request from a browser must come from an origin the experience allows
/// (an empty list allows all). Requests without `Origin` are server to server.
pub fn check_allowed_origins(
    instance: &Instance,
    slug: &str,
    origin: Option<&str>,
) -> Result<(), ApiError> {
    let (Some(raw), Some(product)) = (origin, instance.products.get(slug)) else {
        return Ok(());
    };
    if product.allowed_origins.is_empty() {
        return Ok(());
    }
    let origin: Origin = raw.parse().map_err(|_| ApiError::OriginNotAllowed)?;
    let allowed = product
        .allowed_origins
        .iter()
        .filter_map(|p| p.parse::<OriginPattern>().ok())
        .any(|p| p.matches(&origin));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed)
    }
}

/// A browser token is valid only from the Origin it was minted for; a server
/// token never from a browser.
pub fn check_origin(claims: &Claims, origin: Option<&str>) -> Result<(), ApiError> {
    match (claims.kind, origin) {
        (TokenKind::Server, None) => Ok(()),
        (TokenKind::Server, Some(_)) => Err(ApiError::SecretFromBrowser),
        (TokenKind::Browser, None) => Err(ApiError::OriginNotAllowed),
        (TokenKind::Browser, Some(raw)) => {
            let presented = raw
                .parse::<Origin>()
                .map_err(|_| ApiError::OriginNotAllowed)?;
            if Some(presented.to_string().as_str()) == claims.org.as_deref() {
                Ok(())
            } else {
                Err(ApiError::OriginNotAllowed)
            }
        }
    }
}
