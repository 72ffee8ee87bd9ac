//! The keys a [`TokenService`](super::TokenService) signs and verifies with,
//! built from the stored key ring (`domain/keyring.rs` has its rules), and the
//! sealing of private keys for the store.
//!
//! Private keys are sealed with AES-256-GCM under the key-encryption key,
//! with the `kid` as associated data, so that a sealed key copied onto
//! another ring entry does not open. A nonce is 96 random bits per sealing;
//! a ring seals a handful of keys in its life, far from the birthday bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::DecodingKey;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::{KeyError, SigningKey};
use crate::domain::keyring::{self, RingKey, RingTimes};

/// The AES-256-GCM key that seals the ring's private keys. Never printed.
pub struct KeyEncryptionKey(LessSafeKey);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealed private key of {0} does not open with this key-encryption key (KEYBROKER_KEY_ENCRYPTION_KEY / signing.key_encryption_key): it is not the key the ring was sealed with, or the ring is corrupt")]
    WrongKey(String),
    #[error("key {0} of the ring is not a valid Ed25519 key")]
    BadKey(String),
    #[error("the operating system's random generator failed")]
    Random,
}

impl KeyEncryptionKey {
    pub fn new(bytes: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256 takes a 32-byte key");
        KeyEncryptionKey(LessSafeKey::new(key))
    }

    /// A random key, for a store that lives and dies with this process.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Random)?;
        Ok(Self::new(&bytes))
    }

    pub fn seal(&self, kid: &str, secret: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut sealed = secret.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let wrong = || SealError::WrongKey(kid.to_owned());
        let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut rest = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut rest)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

/// A new ring entry for a PKCS#8 key.
pub fn ring_key(
    der: &[u8],
    kek: &KeyEncryptionKey,
    created_at: i64,
    active_at: i64,
    immediate: bool,
) -> Result<RingKey, KeyError> {
    let key = SigningKey::from_pkcs8_der(der)?;
    let sealed = kek.seal(&key.kid, der).map_err(|_| KeyError::NotEd25519)?;
    Ok(RingKey {
        kid: key.kid,
        created_at,
        active_at,
        revoked_at: None,
        immediate,
        public_key: URL_SAFE_NO_PAD.encode(&key.public),
        sealed_private_key: sealed,
    })
}

/// What one ring (plus the configured verify-only keys) signs and verifies with.
pub(super) struct Keys {
    pub ring: Vec<RingKey>,
    pub signers: HashMap<String, Arc<SigningKey>>,
    /// The signer when the ring has no say (a service built from one PEM).
    pub fallback: Arc<SigningKey>,
    pub verifying: HashMap<String, Verifier>,
    pub times: RingTimes,
}

pub(super) struct Verifier {
    pub key: DecodingKey,
    pub public: String,
    /// From then on the key is gone: not published, its tokens refused.
    pub removed_at: Option<i64>,
}

impl Keys {
    /// One key that signs since forever, and keys that only verify.
    pub fn fixed(current: SigningKey, previous: Vec<SigningKey>, times: RingTimes) -> Self {
        let mut verifying = HashMap::new();
        for key in previous.iter().chain(std::iter::once(&current)) {
            verifying.insert(key.kid.clone(), Verifier::of(key, None));
        }
        Keys {
            ring: Vec::new(),
            signers: HashMap::new(),
            fallback: Arc::new(current),
            verifying,
            times,
        }
    }

    /// The ring's keys, opened with `kek`, plus `extra` verify-only keys.
    pub fn from_ring(
        ring: Vec<RingKey>,
        kek: &KeyEncryptionKey,
        extra: &[(String, Vec<u8>)],
        times: RingTimes,
    ) -> Result<Self, SealError> {
        let mut signers = HashMap::new();
        let mut verifying = HashMap::new();
        for (kid, public) in extra {
            verifying.insert(
                kid.clone(),
                Verifier {
                    key: DecodingKey::from_ed_der(public),
                    public: URL_SAFE_NO_PAD.encode(public),
                    removed_at: None,
                },
            );
        }
        for entry in &ring {
            let der = kek.open(&entry.kid, &entry.sealed_private_key)?;
            let key = SigningKey::from_pkcs8_der(&der)
                .map_err(|_| SealError::BadKey(entry.kid.clone()))?;
            if key.kid != entry.kid {
                return Err(SealError::BadKey(entry.kid.clone()));
            }
            verifying.insert(
                key.kid.clone(),
                Verifier::of(&key, entry.removed_at(&ring, times)),
            );
            signers.insert(key.kid.clone(), Arc::new(key));
        }
        let fallback = keyring::signer(&ring, i64::MIN, times)
            .and_then(|k| signers.get(&k.kid))
            .cloned()
            .ok_or_else(|| SealError::BadKey("(none: the ring has no live key)".into()))?;
        Ok(Keys {
            ring,
            signers,
            fallback,
            verifying,
            times,
        })
    }

    pub fn signer(&self, now: i64) -> &Arc<SigningKey> {
        keyring::signer(&self.ring, now, self.times)
            .and_then(|k| self.signers.get(&k.kid))
            .unwrap_or(&self.fallback)
    }

    /// The JWKS at `now`: every key not removed, by kid.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let mut keys: Vec<_> = self
            .verifying
            .iter()
            .filter(|(_, v)| v.removed_at.is_none_or(|at| at > now))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({
            "keys": keys.iter().map(|(kid, v)| serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": kid,
                "x": v.public,
            })).collect::<Vec<_>>()
        })
    }
}

impl Verifier {
    fn of(key: &SigningKey, removed_at: Option<i64>) -> Self {
        Verifier {
            key: DecodingKey::from_ed_der(&key.public),
            public: URL_SAFE_NO_PAD.encode(&key.public),
            removed_at,
        }
    }
}
