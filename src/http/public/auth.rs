//! `POST /v1/auth`: a secret (servers) or a domain key (browsers) for an access
//! token (see `app/auth.rs` for the exchange and its brute-force limits).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::token_response;
use crate::app::auth::Presented;
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::extract::{ApiKeyHeader, ClientIp, JsonOrForm, OriginHeader};

#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    secret: Option<String>,
    domain_key: Option<String>,
    #[serde(rename = "domainKey")]
    domain_key_camel: Option<String>,
}

impl AuthRequest {
    fn credential(self) -> Result<Presented, ApiError> {
        let domain_key = match (self.domain_key, self.domain_key_camel) {
            (Some(_), Some(_)) => {
                return Err(ApiError::ConflictingCredentials(
                    "send domain_key or domainKey, not both",
                ))
            }
            (a, b) => a.or(b),
        };
        match (self.secret, domain_key) {
            (Some(_), Some(_)) => Err(ApiError::ConflictingCredentials(
                "send either a secret or a domain key, not both",
            )),
            (Some(secret), None) => Ok(Presented::Secret(secret)),
            (None, Some(key)) => Ok(Presented::DomainKey(key)),
            (None, None) => Err(ApiError::MissingCredential),
        }
    }
}

pub async fn auth(
    state: web::Data<AppState>,
    ApiKeyHeader(api_key): ApiKeyHeader,
    OriginHeader(origin): OriginHeader,
    ClientIp(ip): ClientIp,
    JsonOrForm(request): JsonOrForm<AuthRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = request.credential()?;
    let issued = state
        .exchange(&api_key, origin.as_deref(), ip, presented)
        .await?;
    Ok(token_response(&state, &issued))
}
