//! The [`AccessToken`] extractor: an access token valid for the instance of
//! `x-inbenta-key`, from an allowed Origin, not revoked (see `app/access.rs`
//! for the checks and their order).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::extract::{app_state, bearer};
use crate::app::access::{Access, Presented};
use crate::error::ApiError;

/// What a request presents, copied out of it so that checking can run in a
/// `'static` future.
pub fn presented(req: &HttpRequest) -> Presented {
    let text = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Presented {
        token: bearer(req).map(str::to_owned),
        api_key: text("x-inbenta-key"),
        origin: text(header::ORIGIN.as_str()),
        operation: None,
    }
}

/// For routes that are not about one product.
#[derive(Debug)]
pub struct AccessToken(pub Access);

impl FromRequest for AccessToken {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let presented = presented(req);
        Box::pin(async move {
            let state = state?;
            state.authorize(presented).await.map(AccessToken)
        })
    }
}
