//! The product gateway (SPEC §4): `ANY /prod/{product}/{path…}` checks the
//! access token and proxies to the product's upstream; `GET /v1/verify` runs the
//! same checks for a reverse proxy's sub-request (nginx `auth_request`, Traefik
//! ForwardAuth) and proxies nothing.

pub mod proxy;
pub mod verify;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::access::{authorize, Access, Presented};
use super::AppState;
use crate::error::ApiError;

/// Headers the gateway adds for the upstream; callers can never set them.
pub const IDENTITY_HEADERS: [&str; 3] = [
    "x-keybroker-instance",
    "x-keybroker-subject-kind",
    "x-keybroker-token-id",
];

impl Access {
    /// The identity headers and their values.
    pub fn identity(&self) -> [(&'static str, String); 3] {
        [
            (IDENTITY_HEADERS[0], self.instance.id.clone()),
            (IDENTITY_HEADERS[1], self.subject_kind().to_owned()),
            (IDENTITY_HEADERS[2], self.claims.jti.clone()),
        ]
    }
}

/// An access token valid for one product, named by the request path
/// (`/prod/{product}/…`) or, for forward-auth, by `X-Original-URI`.
#[derive(Debug)]
pub struct ProductAccess {
    pub access: Access,
    pub product: String,
}

/// The product of a gateway path, `/prod/{product}/{rest}`, and the raw rest.
pub fn split_gateway_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/prod/")?.split_once('/')
}

/// The product named by an original URI seen by a reverse proxy: the first path
/// segment, after an optional `/prod` prefix.
pub fn product_of_original_uri(uri: &str) -> Option<&str> {
    let path = uri.split(['?', '#']).next()?;
    let path = path
        .strip_prefix("/prod/")
        .unwrap_or(path.strip_prefix('/')?);
    let product = path.split('/').next()?;
    (!product.is_empty()).then_some(product)
}

fn header_text(req: &HttpRequest, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        req.headers()
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

impl FromRequest for ProductAccess {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let product = if req.path().starts_with("/prod/") {
            split_gateway_path(req.path()).map(|(p, _)| p.to_owned())
        } else {
            header_text(req, &["x-original-uri", "x-forwarded-uri"])
                .as_deref()
                .and_then(product_of_original_uri)
                .map(str::to_owned)
        };
        let presented = Presented::from_request(req, product.clone());
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::internal(std::io::Error::other("application state is missing"))
            })?;
            let product = product.ok_or_else(|| {
                ApiError::bad_request(
                    "missing_original_uri",
                    "X-Original-URI (or X-Forwarded-Uri) must name the product: /prod/{product}/… or /{product}/…",
                )
            })?;
            let access = authorize(&state, presented).await?;
            Ok(ProductAccess { access, product })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            product_of_original_uri("/prod/search/v1/search?q=a"),
            Some("search")
        );
        assert_eq!(product_of_original_uri("/chat/v1/chat"), Some("chat"));
        assert_eq!(product_of_original_uri("/"), None);
        assert_eq!(product_of_original_uri("search"), None);
    }
}
