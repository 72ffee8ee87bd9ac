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

use crate::domain::path::DotSegment;
use crate::domain::settings::{DomainsError, SettingError};
use crate::store::StoreError;
use crate::tokens::TokenError;

/// Declares [`Reason`]: every machine-readable reason with its HTTP status.
macro_rules! reasons {
    ($( $variant:ident => ($status:ident, $text:literal) ),* $(,)?) => {
        /// The `reason` of an error body. One reason, one status: this is the
        /// table the documentation (`docs/errors.md`, `openapi.yaml`) is
        /// held to by a test.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $( $variant, )* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            pub fn status(self) -> StatusCode {
                match self { $( Reason::$variant => StatusCode::$status, )* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $text, )* }
            }
        }
    };
}

reasons! {
    MissingCredential => (BAD_REQUEST, "missing_credential"),
    ConflictingCredentials => (BAD_REQUEST, "conflicting_credentials"),
    InvalidJson => (BAD_REQUEST, "invalid_json"),
    InvalidForm => (BAD_REQUEST, "invalid_form"),
    InvalidBody => (BAD_REQUEST, "invalid_body"),
    InvalidRequest => (BAD_REQUEST, "invalid_request"),
    InvalidQuery => (BAD_REQUEST, "invalid_query"),
    InvalidDomain => (BAD_REQUEST, "invalid_domain"),
    InvalidPath => (BAD_REQUEST, "invalid_path"),
    MissingOriginalUri => (BAD_REQUEST, "missing_original_uri"),
    MissingApiKey => (UNAUTHORIZED, "missing_api_key"),
    InvalidCredentials => (UNAUTHORIZED, "invalid_credentials"),
    MissingToken => (UNAUTHORIZED, "missing_token"),
    InvalidToken => (UNAUTHORIZED, "invalid_token"),
    TokenExpired => (UNAUTHORIZED, "token_expired"),
    TokenNotYetValid => (UNAUTHORIZED, "token_not_yet_valid"),
    TokenRevoked => (UNAUTHORIZED, "token_revoked"),
    SessionExpired => (UNAUTHORIZED, "session_expired"),
    CredentialRevoked => (UNAUTHORIZED, "credential_revoked"),
    AdminAuthRequired => (UNAUTHORIZED, "admin_auth_required"),
    InvalidAdminToken => (UNAUTHORIZED, "invalid_admin_token"),
    SecretFromBrowser => (FORBIDDEN, "secret_from_browser"),
    OriginNotAllowed => (FORBIDDEN, "origin_not_allowed"),
    DomainKeyPending => (FORBIDDEN, "domain_key_pending"),
    InstanceMismatch => (FORBIDDEN, "instance_mismatch"),
    ExperienceMismatch => (FORBIDDEN, "experience_mismatch"),
    OperationNotAllowed => (FORBIDDEN, "operation_not_allowed"),
    AdminTokenRequired => (FORBIDDEN, "admin_token_required"),
    NotFound => (NOT_FOUND, "not_found"),
    UnknownProduct => (NOT_FOUND, "unknown_product"),
    RouteNotFound => (NOT_FOUND, "route_not_found"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed"),
    RequestTimeout => (REQUEST_TIMEOUT, "request_timeout"),
    AlreadyExists => (CONFLICT, "already_exists"),
    AlreadyRevoked => (CONFLICT, "already_revoked"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited"),
    TooManyFailures => (TOO_MANY_REQUESTS, "too_many_failures"),
    InternalError => (INTERNAL_SERVER_ERROR, "internal_error"),
    UpstreamUnavailable => (BAD_GATEWAY, "upstream_unavailable"),
    StoreUnavailable => (SERVICE_UNAVAILABLE, "store_unavailable"),
    UpstreamTimeout => (GATEWAY_TIMEOUT, "upstream_timeout"),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body must contain a secret or a domain_key")]
    MissingCredential,
    #[error("{0}")]
    ConflictingCredentials(&'static str),
    #[error("{0}")]
    InvalidJson(String),
    #[error("the form body is not valid: {0}")]
    InvalidForm(String),
    #[error("the request body could not be read")]
    InvalidBody,
    /// An admin field out of range.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the query string is not valid: {0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidDomain(String),
    /// The configured URI header (`verify.uri_header`) is missing or names
    /// no product.
    #[error("{0} must name the product: /prod/{{product}}/… or /{{product}}/…")]
    MissingOriginalUri(String),
    #[error("the request body did not arrive within {limit_ms} ms")]
    RequestTimeout { limit_ms: u128 },
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
    #[error("{0}")]
    AlreadyRevoked(&'static str),
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The store did not answer, or answered with data the broker cannot
    /// read: either way no decision can be made, and the request fails
    /// closed. The cause is logged, never sent.
    #[error("the credential store is unavailable; try again shortly")]
    StoreUnavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// Which reason of the table this error answers with.
    pub fn reason(&self) -> Reason {
        use ApiError::*;
        match self {
            MissingCredential => Reason::MissingCredential,
            ConflictingCredentials(_) => Reason::ConflictingCredentials,
            InvalidJson(_) => Reason::InvalidJson,
            InvalidForm(_) => Reason::InvalidForm,
            InvalidBody => Reason::InvalidBody,
            InvalidRequest(_) => Reason::InvalidRequest,
            InvalidQuery(_) => Reason::InvalidQuery,
            InvalidDomain(_) => Reason::InvalidDomain,
            MissingOriginalUri(_) => Reason::MissingOriginalUri,
            RequestTimeout { .. } => Reason::RequestTimeout,
            PayloadTooLarge { .. } => Reason::PayloadTooLarge,
            UnsupportedMediaType { .. } => Reason::UnsupportedMediaType,
            MissingApiKey => Reason::MissingApiKey,
            InvalidCredentials | InvalidClient => Reason::InvalidCredentials,
            MissingToken => Reason::MissingToken,
            InvalidToken(_) => Reason::InvalidToken,
            TokenExpired => Reason::TokenExpired,
            TokenNotYetValid => Reason::TokenNotYetValid,
            TokenRevoked => Reason::TokenRevoked,
            UnknownProduct(_) => Reason::UnknownProduct,
            InvalidPath => Reason::InvalidPath,
            ExperienceMismatch => Reason::ExperienceMismatch,
            OperationNotAllowed(_) => Reason::OperationNotAllowed,
            RateLimited { .. } => Reason::RateLimited,
            TooManyFailures { .. } => Reason::TooManyFailures,
            UpstreamUnavailable => Reason::UpstreamUnavailable,
            UpstreamTimeout => Reason::UpstreamTimeout,
            InstanceMismatch => Reason::InstanceMismatch,
            CredentialRevoked => Reason::CredentialRevoked,
            SessionExpired => Reason::SessionExpired,
            SecretFromBrowser => Reason::SecretFromBrowser,
            OriginNotAllowed => Reason::OriginNotAllowed,
            DomainKeyPending { .. } => Reason::DomainKeyPending,
            AdminAuthRequired => Reason::AdminAuthRequired,
            InvalidAdminToken => Reason::InvalidAdminToken,
            AdminForbidden => Reason::AdminTokenRequired,
            NotFound { .. } => Reason::NotFound,
            Conflict(_) => Reason::AlreadyExists,
            AlreadyRevoked(_) => Reason::AlreadyRevoked,
            RouteNotFound => Reason::RouteNotFound,
            MethodNotAllowed => Reason::MethodNotAllowed,
            StoreUnavailable(_) => Reason::StoreUnavailable,
            Internal(_) => Reason::InternalError,
        }
    }

    /// The status and reason this error answers with.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        let reason = self.reason();
        (reason.status(), reason.as_str())
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
    /// Corrupt data answers like an unreachable store (503, retry later),
    /// never as if the value were absent: a garbled revocation must not
    /// read as "not revoked".
    fn from(e: StoreError) -> Self {
        ApiError::StoreUnavailable(e)
    }
}

impl From<SettingError> for ApiError {
    fn from(e: SettingError) -> Self {
        ApiError::InvalidRequest(e.to_string())
    }
}

impl From<DomainsError> for ApiError {
    fn from(e: DomainsError) -> Self {
        ApiError::InvalidDomain(e.to_string())
    }
}

impl From<DotSegment> for ApiError {
    fn from(_: DotSegment) -> Self {
        ApiError::InvalidPath
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
            ApiError::StoreUnavailable(cause @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %cause, "store unavailable");
                self.to_string()
            }
            ApiError::StoreUnavailable(cause @ StoreError::NotReplicated { .. }) => {
                tracing::warn!(error = %cause, "a durable write was not acknowledged");
                format!(
                    "{cause}, so it is not acknowledged: it may or may not survive a failover; retry it"
                )
            }
            ApiError::StoreUnavailable(cause @ StoreError::Corrupt(_)) => {
                tracing::error!(error = %cause, "stored data is corrupt; the request fails closed");
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
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way: this connection
            // cannot carry another request (RFC 9110 §15.5.9).
            response.force_close();
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(json!({ "error": Value::Object(inner) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_data_fails_closed_like_an_unreachable_store() {
        for cause in [
            StoreError::Corrupt("rev:all is not a whole number".into()),
            StoreError::Unavailable("connection refused".into()),
            StoreError::NotReplicated { waited_ms: 1000 },
        ] {
            let response = ApiError::from(cause).error_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from_static("1"))
            );
        }
    }

    #[test]
    fn an_unconfirmed_durable_write_says_so() {
        let message =
            ApiError::from(StoreError::NotReplicated { waited_ms: 1000 }).error_response();
        assert_eq!(message.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = actix_web::body::to_bytes(message.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .expect("a JSON body is ready at once")
            .expect("the body reads");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("no replica confirmed the write within 1000 ms")
                && text.contains("store_unavailable"),
            "{text}"
        );
    }

    #[test]
    fn every_reason_is_named_once() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
