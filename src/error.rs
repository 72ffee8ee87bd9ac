//! One error type for every route, one table from variant to (status, reason), and
//! one body shape: `{"error": {"code", "message", "reason", …extra}}`.
//!
//! Authentication failures that could tell an attacker which part was wrong (an
//! unknown API key, a wrong secret, a secret of another instance, a malformed
//! credential) all collapse into [`ApiError::InvalidCredentials`]. Internal errors
//! log their cause and send a fixed message.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        reason: &'static str,
        message: String,
    },
    #[error("the request body is larger than the {limit} bytes allowed")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type; send {supported}")]
    UnsupportedMediaType { supported: &'static str },
    #[error("the x-inbenta-key header is required")]
    MissingApiKey,
    #[error("invalid API key or credential")]
    InvalidCredentials,
    /// The same refusal for HTTP Basic client authentication (introspection).
    #[error("invalid API key or credential")]
    InvalidClient,
    #[error("an access token is required in the Authorization header as Bearer")]
    MissingToken,
    #[error("{0}")]
    InvalidToken(TokenError),
    #[error("the access token has expired")]
    TokenExpired,
    #[error("the access token is not valid yet")]
    TokenNotYetValid,
    #[error("the access token has been revoked")]
    TokenRevoked,
    #[error("this instance has no product {0:?}")]
    UnknownProduct(String),
    #[error("the path must not contain . or .. segments")]
    InvalidPath,
    #[error("this experience token is for another experience")]
    ExperienceMismatch,
    #[error("the experience does not allow the operation {0:?}")]
    OperationNotAllowed(String),
    #[error("rate limit exceeded ({window} limit of {limit}); retry in {retry_after} s")]
    RateLimited {
        window: &'static str,
        limit: u64,
        retry_after: u64,
    },
    #[error("too many failed authentications; retry in {retry_after} s")]
    TooManyFailures { retry_after: u64 },
    #[error("the product's upstream is unavailable")]
    UpstreamUnavailable,
    #[error("the product's upstream did not answer in time")]
    UpstreamTimeout,
    #[error("the access token belongs to another instance")]
    InstanceMismatch,
    #[error("the credential that started this session was revoked")]
    CredentialRevoked,
    #[error("the session has passed its maximum lifetime; authenticate again")]
    SessionExpired,
    #[error("secrets are for servers; browsers must use a domain key")]
    SecretFromBrowser,
    #[error("this origin is not allowed for the credential")]
    OriginNotAllowed,
    #[error("the domain key is not active yet")]
    DomainKeyPending { active_at: i64, retry_after: u64 },
    #[error("the admin API requires Authorization: Bearer <admin token>")]
    AdminAuthRequired,
    #[error("invalid admin token")]
    InvalidAdminToken,
    #[error("access tokens and experience tokens cannot use the admin API")]
    AdminForbidden,
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{0}")]
    Conflict(String),
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the credential store is unavailable; try again shortly")]
    StoreUnavailable,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            reason,
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// The table: every variant's status and machine-readable reason.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            BadRequest { reason, .. } => (StatusCode::BAD_REQUEST, reason),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            InvalidCredentials | InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            TokenNotYetValid => (StatusCode::UNAUTHORIZED, "token_not_yet_valid"),
            TokenRevoked => (StatusCode::UNAUTHORIZED, "token_revoked"),
            UnknownProduct(_) => (StatusCode::NOT_FOUND, "unknown_product"),
            InvalidPath => (StatusCode::BAD_REQUEST, "invalid_path"),
            ExperienceMismatch => (StatusCode::FORBIDDEN, "experience_mismatch"),
            OperationNotAllowed(_) => (StatusCode::FORBIDDEN, "operation_not_allowed"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            TooManyFailures { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_failures"),
            UpstreamUnavailable => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            InstanceMismatch => (StatusCode::FORBIDDEN, "instance_mismatch"),
            CredentialRevoked => (StatusCode::UNAUTHORIZED, "credential_revoked"),
            SessionExpired => (StatusCode::UNAUTHORIZED, "session_expired"),
            SecretFromBrowser => (StatusCode::FORBIDDEN, "secret_from_browser"),
            OriginNotAllowed => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            DomainKeyPending { .. } => (StatusCode::FORBIDDEN, "domain_key_pending"),
            AdminAuthRequired => (StatusCode::UNAUTHORIZED, "admin_auth_required"),
            InvalidAdminToken => (StatusCode::UNAUTHORIZED, "invalid_admin_token"),
            AdminForbidden => (StatusCode::FORBIDDEN, "admin_token_required"),
            NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Conflict(_) => (StatusCode::CONFLICT, "already_exists"),
            RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    fn extra_fields(&self, body: &mut Map<String, Value>) {
        match self {
            ApiError::DomainKeyPending { active_at, .. } => {
                body.insert("active_at".into(), json!(active_at));
            }
            ApiError::RateLimited {
                window,
                retry_after,
                ..
            } => {
                body.insert("limit".into(), json!(window));
                body.insert("retry_after".into(), json!(retry_after));
            }
            ApiError::TooManyFailures { retry_after } => {
                body.insert("limit".into(), json!("auth_failures"));
                body.insert("retry_after".into(), json!(retry_after));
            }
            _ => {}
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::StoreUnavailable,
            other => ApiError::internal(other),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => ApiError::TokenExpired,
            TokenError::NotYetValid => ApiError::TokenNotYetValid,
            other => ApiError::InvalidToken(other),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, reason) = self.parts();
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, source = ?cause.source(), "internal error");
                "internal error".to_owned()
            }
            ApiError::StoreUnavailable => {
                tracing::warn!("store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut inner = Map::new();
        inner.insert("code".into(), json!(status.as_u16()));
        inner.insert("message".into(), json!(message));
        inner.insert("reason".into(), json!(reason));
        self.extra_fields(&mut inner);

        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match self {
                ApiError::InvalidToken(_)
                | ApiError::TokenExpired
                | ApiError::TokenNotYetValid
                | ApiError::TokenRevoked => r#"Bearer error="invalid_token""#,
                ApiError::InvalidClient => r#"Basic realm="keybroker""#,
                _ => "Bearer",
            };
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        match self {
            ApiError::DomainKeyPending { retry_after, .. }
            | ApiError::TooManyFailures { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::RateLimited {
                limit, retry_after, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
                response.insert_header(("RateLimit-Limit", limit.to_string()));
                response.insert_header(("RateLimit-Remaining", "0"));
                response.insert_header(("RateLimit-Reset", retry_after.to_string()));
            }
            _ => {}
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(json!({ "error": Value::Object(inner) }))
    }
}
