//! Issuing and verifying access tokens; the only user of `jsonwebtoken`.
//!
//! Tokens are EdDSA (Ed25519) JWTs with a `kid` equal to the RFC 7638 thumbprint
//! of the signing key. Verification goes through one strict [`Validation`]: the
//! algorithm is pinned to EdDSA, `exp`, `nbf`, `iat`, `iss` and `aud` are
//! required, and the leeway is the configured one. `alg: none`, HS256 and any
//! other algorithm fail before a key is even looked at, and so does a header
//! with `crit` (RFC 7515 §4.1.11: no extension is understood here). A token
//! dated (`iat`) later than now plus the leeway is refused too.
//!
//! `exp` and `nbf` are required by the validation but compared here, against the
//! injected [`Clock`](crate::clock::Clock), with the same leeway: `jsonwebtoken`
//! would compare them with the system time, which tests cannot move. There is
//! exactly one time check, and it is never skipped.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::domain::keyring::{RingKey, RingTimes};

pub use keyset::{ring_key, KeyEncryptionKey, SealError};

mod cache;
mod keyset;

use cache::VerifiedCache;
pub use cache::VERIFIED_CACHE_CAPACITY;

pub const AUDIENCE: &str = "keybroker";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Server,
    Browser,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Server => "server",
            TokenKind::Browser => "browser",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Instance id.
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Session: the refresh family this token belongs to.
    pub sid: String,
    /// Id of the secret or domain key that started the session.
    pub cred: String,
    pub kind: TokenKind,
    /// Browser tokens: the Origin they were minted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// When the session started (the first `/v1/auth`), for its maximum lifetime.
    pub auth_time: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key is not a PEM block")]
    NotPem,
    #[error("signing key PEM must be a PKCS#8 \"PRIVATE KEY\" block")]
    WrongPemLabel,
    #[error("signing key is not valid base64 inside its PEM armour")]
    BadBase64,
    #[error("signing key is not a PKCS#8 Ed25519 private key")]
    NotEd25519,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the access token signature or claims are invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token claims to be issued in the future")]
    IssuedInFuture,
    #[error("the access token has a critical header parameter (crit), which the broker does not support")]
    CriticalHeader,
}

/// One Ed25519 key: signs new tokens if it is the current one, verifies always.
/// Signing is done here with ring directly, on a key pair parsed once: the
/// JOSE part is two base64url segments, and `jsonwebtoken` would parse the
/// PKCS#8 key again for every token. Verification stays with `jsonwebtoken`.
struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
    /// The base64url JOSE header of every token this key signs.
    header: String,
    public: Vec<u8>,
}

impl SigningKey {
    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| KeyError::NotEd25519)?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = thumbprint(&public);
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::json!({ "typ": "JWT", "alg": "EdDSA", "kid": kid }).to_string());
        Ok(SigningKey {
            kid,
            pair,
            header,
            public,
        })
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, KeyError> {
    let pem = pem.trim();
    let begin = pem.find("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let after_begin = &pem[begin + 11..];
    let label_end = after_begin.find("-----").ok_or(KeyError::NotPem)?;
    if &after_begin[..label_end] != "PRIVATE KEY" {
        return Err(KeyError::WrongPemLabel);
    }
    let body = &after_begin[label_end + 5..];
    let end = body
        .find("-----END PRIVATE KEY-----")
        .ok_or(KeyError::NotPem)?;
    let b64: String = body[..end].split_whitespace().collect();
    STANDARD.decode(b64).map_err(|_| KeyError::BadBase64)
}

/// A freshly generated Ed25519 key as PKCS#8 DER (a rotation's next key).
pub fn generate_pkcs8_der() -> Result<Vec<u8>, SealError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|der| der.as_ref().to_vec())
        .map_err(|_| SealError::Random)
}

/// A PKCS#8 PEM key as DER.
pub fn pkcs8_pem_to_der(pem: &str) -> Result<Vec<u8>, KeyError> {
    pem_to_der(pem)
}

/// A freshly generated Ed25519 key as PKCS#8 PEM (for `--demo` and tests).
pub fn generate_pkcs8_pem() -> String {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .expect("the operating system's CSPRNG is unavailable");
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

pub struct TokenService {
    issuer: String,
    keys: RwLock<Arc<keyset::Keys>>,
    /// Verify-only keys from the configuration (`signing.previous_key_files`),
    /// kept across ring changes.
    extra: Vec<(String, Vec<u8>)>,
    validation: Validation,
    leeway: i64,
    verified: VerifiedCache,
    /// Woken by a token with an unknown `kid`: the ring may have changed
    /// without this process hearing of it (the refresher bounds the reads).
    refresh: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// What goes into a new token besides the times and ids this service picks.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub instance_id: &'a str,
    pub credential_id: &'a str,
    pub kind: TokenKind,
    pub origin: Option<String>,
    /// `None` starts a new session; `Some` continues one (refresh).
    pub session: Option<(&'a str, i64)>,
    pub ttl_seconds: i64,
    /// Tokens never outlive their session.
    pub session_ends_at: Option<i64>,
}

impl TokenService {
    /// `current_pem` signs; `previous_pems` only verify (keys being rotated out).
    /// A ring installed later ([`TokenService::install_ring`]) replaces the
    /// current key; the previous ones keep verifying.
    pub fn new(
        issuer: String,
        current_pem: &str,
        previous_pems: &[String],
        leeway_seconds: u64,
    ) -> Result<Self, KeyError> {
        let current = SigningKey::from_pkcs8_der(&pem_to_der(current_pem)?)?;
        let mut previous = Vec::new();
        for pem in previous_pems {
            previous.push(SigningKey::from_pkcs8_der(&pem_to_der(pem)?)?);
        }
        let extra = previous
            .iter()
            .map(|k| (k.kid.clone(), k.public.clone()))
            .collect();
        let leeway = i64::try_from(leeway_seconds).unwrap_or(i64::MAX);
        let times = RingTimes {
            leeway,
            max_token_ttl: i64::try_from(crate::domain::instance::MAX_TOKEN_TTL_SECONDS)
                .unwrap_or(i64::MAX),
        };

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = leeway_seconds;
        // Presence is required below; the comparison with `now` is in `verify`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);

        Ok(TokenService {
            issuer,
            keys: RwLock::new(Arc::new(keyset::Keys::fixed(current, previous, times))),
            extra,
            validation,
            leeway,
            verified: VerifiedCache::new(VERIFIED_CACHE_CAPACITY),
            refresh: Arc::default(),
        })
    }

    /// A service signing and verifying with `ring` (opened with `kek`), and
    /// verifying with `previous_pems` too.
    pub fn from_ring(
        issuer: String,
        ring: Vec<RingKey>,
        kek: &KeyEncryptionKey,
        previous_pems: &[String],
        leeway_seconds: u64,
    ) -> Result<Self, String> {
        // Built from any key, then the ring replaces it: one constructor
        // holds the validation rules.
        let placeholder = generate_pkcs8_pem();
        let service = Self::new(issuer, &placeholder, previous_pems, leeway_seconds)
            .map_err(|e| format!("signing.previous_key_files: {e}"))?;
        service.install_ring(ring, kek).map_err(|e| e.to_string())?;
        Ok(service)
    }

    /// Signs and verifies with `ring` from now on (plus the configured
    /// verify-only keys). When the ring changed, tokens verified before are
    /// verified again: a key may have been revoked. (A key removed by the
    /// passing of time signed no token that outlives it, so an unchanged
    /// ring keeps the cache.)
    pub fn install_ring(
        &self,
        ring: Vec<RingKey>,
        kek: &KeyEncryptionKey,
    ) -> Result<(), SealError> {
        let current = self.keys();
        if !current.ring.is_empty() && current.ring == ring {
            return Ok(());
        }
        let times = current.times;
        let keys = keyset::Keys::from_ring(ring, kek, &self.extra, times)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        self.verified.clear();
        Ok(())
    }

    /// The ring installed last (empty for a service built from one PEM).
    pub fn ring(&self) -> Vec<RingKey> {
        self.keys().ring.clone()
    }

    pub fn ring_times(&self) -> RingTimes {
        self.keys().times
    }

    /// Notified when a token names a key this process does not know.
    pub fn refresh_wanted(&self) -> Arc<tokio::sync::Notify> {
        self.refresh.clone()
    }

    fn keys(&self) -> Arc<keyset::Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key that signs at `now`.
    fn current_at(&self, now: i64) -> Arc<SigningKey> {
        self.keys().signer(now).clone()
    }

    /// The JWKS at `now`: every key that is next, active or retired.
    pub fn jwks(&self, now: DateTime<Utc>) -> serde_json::Value {
        self.keys().jwks(now.timestamp())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn issue(
        &self,
        request: TokenRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<(String, Claims), serde_json::Error> {
        let iat = now.timestamp();
        let (sid, auth_time) = match request.session {
            Some((sid, auth_time)) => (sid.to_owned(), auth_time),
            None => (uuid::Uuid::new_v4().simple().to_string(), iat),
        };
        let mut exp = iat + request.ttl_seconds;
        if let Some(end) = request.session_ends_at {
            exp = exp.min(end);
        }
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: request.instance_id.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat,
            nbf: iat,
            exp,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            sid,
            cred: request.credential_id.to_owned(),
            kind: request.kind,
            org: request.origin,
            auth_time,
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs claims with the key that signs at their `iat`. Ed25519 is
    /// deterministic: the same claims under the same key always give the
    /// same token.
    pub fn sign(&self, claims: &Claims) -> Result<String, serde_json::Error> {
        let key = self.current_at(claims.iat);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let mut token = String::with_capacity(key.header.len() + payload.len() + 90);
        token.push_str(&key.header);
        token.push('.');
        token.push_str(&payload);
        let signature = key.pair.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    /// The token's claims, shared with the verified-token cache.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Arc<Claims>, TokenError> {
        let now = now.timestamp();
        let key = VerifiedCache::key(token);
        let claims = match self.verified.get(&key) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature_and_claims(token, now)?);
                self.verified.insert(key, claims.clone(), now, self.leeway);
                claims
            }
        };
        if claims.exp + self.leeway <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf - self.leeway > now {
            return Err(TokenError::NotYetValid);
        }
        // The broker never issues a token dated later than its signing: an
        // `iat` past the leeway (with an earlier `nbf`) is not one of its
        // tokens as issued, and would outlive revocations "before now".
        if claims.iat - self.leeway > now {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }

    /// Everything but the time checks, which depend on when the token is used.
    fn verify_signature_and_claims(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let header = jose_header(token)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
            return Err(TokenError::Invalid);
        }
        // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit`
        // lists an extension it does not understand, and this broker
        // understands none (a `crit` that is not a list is malformed anyway).
        if header.contains_key("crit") {
            return Err(TokenError::CriticalHeader);
        }
        let keys = self.keys();
        let key = match header
            .get("kid")
            .and_then(|kid| kid.as_str())
            .and_then(|kid| keys.verifying.get(kid))
        {
            // A removed key's tokens are all expired, or revoked with it.
            Some(v) if v.removed_at.is_none_or(|at| at > now) => &v.key,
            Some(_) => return Err(TokenError::UnknownKey),
            None => {
                self.refresh.notify_one();
                return Err(TokenError::UnknownKey);
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            }
        })?;
        let claims = data.claims;
        if (claims.kind == TokenKind::Browser) != claims.org.is_some() {
            return Err(TokenError::Invalid);
        }
        // Times the leeway cannot be added to or taken from cannot be
        // compared; only a signer gone wrong makes them. Refused here, they
        // never reach the cache or the time checks.
        if claims.exp.checked_add(self.leeway).is_none()
            || claims.nbf.checked_sub(self.leeway).is_none()
            || claims.iat.checked_sub(self.leeway).is_none()
        {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

/// The JOSE header of a compact JWS, as a JSON object: decoded here because
/// `jsonwebtoken`'s `Header` drops the members it does not know, `crit`
/// among them.
fn jose_header(token: &str) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
