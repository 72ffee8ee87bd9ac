//! HTTP routes, grouped by audience: `public` (the Inbenta-compatible API),
//! `admin` (operators) and `ops` (health and metrics).

pub mod admin;
pub mod extract;
pub mod ops;
pub mod public;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::credential::{CredentialHash, CredentialHasher};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tokens::TokenService;

/// Everything a handler may use, built once in `startup`.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: TokenService,
    pub hasher: CredentialHasher,
    pub admin: AdminToken,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub public_base_url: String,
    pub propagation_seconds: u64,
    pub default_token_ttl_seconds: u64,
    pub max_session_seconds: u64,
    pub max_body_bytes: usize,
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
                        $( .route(web::method(actix_web::http::Method::$method).to($handler)) )+
                        .default_service(web::to(method_not_allowed)),
                );
            )*
        }
    };
}

routes! {
    "/v1/auth" => { POST: public::auth::auth },
    "/v1/refreshToken" => { POST: public::refresh::refresh },
    "/v1/apis" => { GET: public::apis::apis },
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
