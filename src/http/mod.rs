//! HTTP routes, grouped by audience: `public` (the Inbenta-compatible API),
//! `admin` (operators) and `ops` (health and metrics).

pub mod access;
pub mod admin;
pub mod audit;
pub mod cache;
pub mod cors;
pub mod extract;
pub mod gateway;
pub mod ops;
pub mod public;
pub mod revocation_view;
pub mod usage;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::credential::{CredentialHash, CredentialHasher};
use crate::domain::instance::MAX_TOKEN_TTL_SECONDS;
use crate::domain::network::Cidr;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Revocation, Store, StoreError};
use crate::tokens::TokenService;

/// Everything a handler may use, built once in `startup`.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: TokenService,
    pub hasher: CredentialHasher,
    pub admin: AdminToken,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub public_base_url: String,
    pub propagation_seconds: u64,
    pub default_token_ttl_seconds: u64,
    pub max_session_seconds: u64,
    pub refresh_reuse_seconds: u64,
    pub leeway_seconds: u64,
    pub max_body_bytes: usize,
    pub usage: usage::UsageBuffer,
    pub instances: cache::InstanceCache,
    pub credentials: cache::CredentialCache,
    /// Secrets and domain keys that `/v1/auth` or introspection accepted.
    pub auth_credentials: cache::CredentialCache,
    pub revocations: Arc<revocation_view::RevocationView>,
    pub cors: cors::CorsIndex,
    pub cors_max_age_seconds: u64,
    pub trusted_proxies: Vec<Cidr>,
    pub auth_failures_per_ip_per_minute: u64,
    pub auth_failures_per_key_per_minute: u64,
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The `apis` map: each product's gateway URL on this broker.
    pub fn apis<'a>(
        &self,
        products: impl Iterator<Item = &'a String>,
    ) -> serde_json::Map<String, serde_json::Value> {
        products
            .map(|slug| {
                (
                    slug.clone(),
                    serde_json::Value::String(format!("{}/prod/{slug}", self.public_base_url)),
                )
            })
            .collect()
    }
}

impl AppState {
    /// Records a revocation for as long as a token it names could still be
    /// alive: until `keep_until` (unix seconds) plus the leeway.
    pub async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let leeway = i64::try_from(self.leeway_seconds).unwrap_or(0);
        let ttl = keep_until + leeway - self.now().timestamp();
        self.store.revoke(instance_id, revocation, ttl.max(1)).await
    }

    /// When the last token issued at or before `at` (unix seconds) expires.
    pub fn last_expiry_of_tokens_issued_by(&self, at: i64) -> i64 {
        at + i64::try_from(MAX_TOKEN_TTL_SECONDS).unwrap_or(0)
    }

    /// Kills every token `credential_id` minted, from `at` on.
    pub async fn revoke_credential_tokens(
        &self,
        instance_id: &str,
        credential_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let before = at.timestamp();
        self.revoke(
            instance_id,
            Revocation::Credential {
                id: credential_id,
                before,
            },
            self.last_expiry_of_tokens_issued_by(before),
        )
        .await
    }
}

/// The configured admin token, kept only as an HMAC tag so that checking it is a
/// constant-time comparison of equal-length tags.
pub struct AdminToken {
    hasher: CredentialHasher,
    tag: CredentialHash,
}

impl AdminToken {
    pub fn new(hasher: &CredentialHasher, token: &str) -> Self {
        AdminToken {
            hasher: hasher.clone(),
            tag: hasher.hash(token),
        }
    }

    pub fn verify(&self, presented: &str) -> bool {
        self.hasher.verify(presented, Some(&self.tag))
    }
}

/// Registers each path with its methods, answers other methods with a JSON 405,
/// and lists every (method, path) in [`ROUTES`] so that a test can hold
/// `openapi.yaml` to the router.
macro_rules! routes {
    ($( $path:literal => { $( $method:ident : $handler:path ),+ $(,)? } ),* $(,)?) => {
        /// Every route the router serves, as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )* ];

        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $( .route(route_for(stringify!($method)).to($handler)) )+
                        .default_service(web::to(method_not_allowed)),
                );
            )*
        }
    };
}

/// `ANY` matches every method; others are the HTTP method of that name.
fn route_for(method: &str) -> actix_web::Route {
    match actix_web::http::Method::from_bytes(method.as_bytes()) {
        Ok(m) if method != "ANY" => web::method(m),
        _ => web::route(),
    }
}

routes! {
    "/v1/auth" => { POST: public::auth::auth },
    "/v1/refreshToken" => { POST: public::refresh::refresh },
    "/v1/apis" => { GET: public::apis::apis },
    "/v1/revoke" => { POST: public::revoke::revoke },
    "/v1/introspect" => { POST: public::introspect::introspect },
    "/v1/verify" => { GET: gateway::verify::verify },
    "/prod/{product}/{path:.*}" => { ANY: gateway::proxy::forward },
    "/.well-known/jwks.json" => { GET: public::jwks::jwks },
    "/admin/v1/instances" => {
        POST: admin::instances::create,
        GET: admin::instances::list,
    },
    "/admin/v1/instances/{id}" => {
        GET: admin::instances::get,
        PATCH: admin::instances::update,
        DELETE: admin::instances::delete,
    },
    "/admin/v1/instances/{id}/experiences" => {
        POST: admin::experiences::create,
        GET: admin::experiences::list,
    },
    "/admin/v1/instances/{id}/experiences/{slug}" => {
        GET: admin::experiences::get,
        PATCH: admin::experiences::update,
        DELETE: admin::experiences::delete,
    },
    "/admin/v1/instances/{id}/experiences/{slug}/regenerate-token" => {
        POST: admin::experiences::regenerate_token,
    },
    "/admin/v1/instances/{id}/usage" => { GET: admin::reports::usage },
    "/admin/v1/instances/{id}/audit" => { GET: admin::reports::audit },
    "/admin/v1/instances/{id}/revoke-tokens" => {
        POST: admin::revocations::revoke_tokens,
    },
    "/admin/v1/instances/{id}/secrets" => {
        POST: admin::secrets::create,
        GET: admin::secrets::list,
    },
    "/admin/v1/instances/{id}/secrets/{secret_id}" => {
        DELETE: admin::secrets::revoke,
    },
    "/admin/v1/instances/{id}/secrets/{secret_id}/rotate" => {
        POST: admin::secrets::rotate,
    },
    "/admin/v1/instances/{id}/domain-keys" => {
        POST: admin::domain_keys::create,
        GET: admin::domain_keys::list,
    },
    "/admin/v1/instances/{id}/domain-keys/{key_id}" => {
        PATCH: admin::domain_keys::update,
        DELETE: admin::domain_keys::revoke,
    },
    "/healthz" => { GET: ops::healthz },
    "/readyz" => { GET: ops::readyz },
    "/metrics" => { GET: ops::metrics },
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
