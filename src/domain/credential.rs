//! Generated credentials: API keys, secrets, domain keys and experience tokens.
//!
//! Every credential is a type prefix, 43 Base62 characters of CSPRNG output
//! (≥ 256 bits) and 6 Base62 characters of CRC32, like GitHub's tokens. The checksum lets us
//! reject typos and random strings before touching the store, and lets secret
//! scanners recognise leaked values offline. The prefix says what a string is, so a
//! secret pasted where a domain key belongs is refused at parse time.
//!
//! Only API keys are stored as they are (they are public identifiers). The others
//! are stored as HMAC-SHA256 tags under a server pepper and compared with
//! `ring::hmac::verify`, which is constant-time.

use std::fmt;
use std::str::FromStr;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 6;
/// Total length of every generated credential.
pub const CREDENTIAL_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    Secret,
    DomainKey,
    ExperienceToken,
}

impl CredentialKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "kb_pk_",
            CredentialKind::Secret => "kb_sk_",
            CredentialKind::DomainKey => "kb_dk_",
            CredentialKind::ExperienceToken => "kb_xt_",
        }
    }

    /// Prefix of the ids of stored credentials of this kind.
    pub const fn id_prefix(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "pk_",
            CredentialKind::Secret => "sk_",
            CredentialKind::DomainKey => "dk_",
            CredentialKind::ExperienceToken => "xt_",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialParseError {
    #[error("credential has the wrong prefix")]
    WrongPrefix,
    #[error("credential has the wrong length")]
    WrongLength,
    #[error("credential contains characters outside Base62")]
    BadCharacter,
    #[error("credential checksum does not match")]
    BadChecksum,
}

fn generate(kind: CredentialKind) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(CREDENTIAL_LEN);
    out.push_str(kind.prefix());
    let mut buf = [0u8; 64];
    while out.len() < PREFIX_LEN + RANDOM_LEN {
        // The system CSPRNG does not fail on Linux once seeded; if it ever does,
        // refusing to mint a credential is the only safe answer.
        rng.fill(&mut buf)
            .expect("the operating system's CSPRNG is unavailable");
        // Rejection sampling keeps every Base62 digit equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == PREFIX_LEN + RANDOM_LEN {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    with_checksum(out)
}

/// Appends the checksum of `payload` (prefix and random part).
pub(super) fn with_checksum(mut payload: String) -> String {
    let checksum = crc32(payload.as_bytes());
    payload.push_str(&base62_fixed(checksum));
    payload
}

fn parse(kind: CredentialKind, s: &str) -> Result<(), CredentialParseError> {
    let body = s
        .strip_prefix(kind.prefix())
        .ok_or(CredentialParseError::WrongPrefix)?;
    if s.len() != CREDENTIAL_LEN {
        return Err(CredentialParseError::WrongLength);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CredentialParseError::BadCharacter);
    }
    let (payload, checksum) = s.split_at(PREFIX_LEN + RANDOM_LEN);
    if base62_fixed(crc32(payload.as_bytes())) != checksum {
        return Err(CredentialParseError::BadChecksum);
    }
    Ok(())
}

/// `first 10 chars + "…" + last 10 chars` (SPEC §2).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 20 {
        return "…".to_owned();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 10..].iter().collect();
    format!("{head}…{tail}")
}

fn base62_fixed(mut n: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// CRC-32 (IEEE 802.3), the checksum GitHub uses in its token format.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

macro_rules! credential_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, redacted = $redacted:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const KIND: CredentialKind = $kind;

            pub fn generate() -> Self {
                Self(generate(Self::KIND))
            }

            /// The full value. Call only to hash it or to show it once at creation.
            pub fn expose(&self) -> &str {
                &self.0
            }

            pub fn masked(&self) -> String {
                mask(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = CredentialParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse(Self::KIND, s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $redacted {
                    write!(f, concat!(stringify!($name), "({})"), self.masked())
                } else {
                    write!(f, concat!(stringify!($name), "({})"), self.0)
                }
            }
        }
    };
}

credential_type!(
    /// Public identifier of an instance, sent as `x-inbenta-key`.
    ApiKey, CredentialKind::ApiKey, redacted = false
);
credential_type!(
    /// Server-side credential; never valid from a browser.
    Secret, CredentialKind::Secret, redacted = true
);
credential_type!(
    /// Browser credential, valid only from the origins of its domains.
    DomainKey, CredentialKind::DomainKey, redacted = true
);
credential_type!(
    /// Static per-experience token (Interakt style).
    ExperienceToken, CredentialKind::ExperienceToken, redacted = true
);

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// HMAC-SHA256 tag of a credential under the server pepper, hex-encoded. It is the
/// store's lookup key; the pepper makes it useless to anyone who reads the store.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialHash(String);

impl CredentialHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> Option<Vec<u8>> {
        if self.0.len() % 2 != 0 {
            return None;
        }
        (0..self.0.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.0.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// Keyed hashing of credentials. Holds the pepper; its `Debug` never shows it.
#[derive(Clone)]
pub struct CredentialHasher {
    key: hmac::Key,
    /// Stands in for the stored tag when a lookup finds nothing, so that an
    /// unknown credential costs the same work as a known one.
    decoy: CredentialHash,
}

impl fmt::Debug for CredentialHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialHasher(Secret)")
    }
}

impl CredentialHasher {
    pub fn new(pepper: &[u8]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, pepper);
        let decoy = hex(hmac::sign(&key, b"keybroker decoy credential").as_ref());
        Self {
            key,
            decoy: CredentialHash(decoy),
        }
    }

    pub fn hash(&self, value: &str) -> CredentialHash {
        CredentialHash(hex(hmac::sign(&self.key, value.as_bytes()).as_ref()))
    }

    /// Constant-time check of `value` against a stored tag. With `None` (nothing
    /// was found) it does the same work against a decoy and answers `false`.
    pub fn verify(&self, value: &str, stored: Option<&CredentialHash>) -> bool {
        let (tag, found) = match stored {
            Some(tag) => (tag, true),
            None => (&self.decoy, false),
        };
        let Some(tag) = tag.bytes() else {
            return false;
        };
        let matches = hmac::verify(&self.key, value.as_bytes(), &tag).is_ok();
        matches && found
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xF) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_parse_and_carry_their_prefix() {
        let secret = Secret::generate();
        assert!(secret.expose().starts_with("kb_sk_"));
        assert_eq!(secret.expose().len(), CREDENTIAL_LEN);
        assert!(secret.expose().parse::<Secret>().is_ok());
        assert_eq!(
            secret.expose().parse::<DomainKey>(),
            Err(CredentialParseError::WrongPrefix)
        );
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let key = ApiKey::generate().expose().to_owned();
        let mut chars: Vec<char> = key.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(
            tampered.parse::<ApiKey>(),
            Err(CredentialParseError::BadChecksum)
        );
    }

    #[test]
    fn wrong_lengths_and_characters_are_rejected() {
        let key = Secret::generate().expose().to_owned();
        assert_eq!(
            key[..key.len() - 1].parse::<Secret>(),
            Err(CredentialParseError::WrongLength)
        );
        let with_dash = format!("kb_sk_-{}", &key[7..]);
        assert_eq!(
            with_dash.parse::<Secret>(),
            Err(CredentialParseError::BadCharacter)
        );
    }

    #[test]
    fn crc32_matches_the_ieee_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let secret = Secret::generate();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.expose()));
        assert!(shown.contains('…'));
    }

    #[test]
    fn mask_keeps_ten_characters_each_side() {
        let secret = Secret::generate();
        let masked = secret.masked();
        assert_eq!(masked.chars().count(), 21);
        assert!(masked.starts_with(&secret.expose()[..10]));
        assert!(masked.ends_with(&secret.expose()[secret.expose().len() - 10..]));
    }

    #[test]
    fn hasher_verifies_only_the_right_value() {
        let hasher = CredentialHasher::new(b"0123456789abcdef0123456789abcdef");
        let secret = Secret::generate();
        let tag = hasher.hash(secret.expose());
        assert!(hasher.verify(secret.expose(), Some(&tag)));
        assert!(!hasher.verify(Secret::generate().expose(), Some(&tag)));
        assert!(!hasher.verify(secret.expose(), None));
        let other = CredentialHasher::new(b"another pepper of thirty-two bytes!");
        assert_ne!(other.hash(secret.expose()), tag);
    }
}
