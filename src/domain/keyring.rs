//! The signing-key ring's rules (SPEC §12), as pure functions of the stored
//! key records and the time.
//!
//! A key's state is derived from its times, not stored as a flag that some
//! process would have to flip: every process reading the same ring at the same
//! time agrees, and nothing has to run at `active_at` for a key to become
//! active.
//!
//! - **next**: `now < active_at`. Published in the JWKS, verifies, never signs.
//! - **active**: the latest key whose `active_at` has passed.
//! - **retired**: an older key, until `retire_at` (the next key's
//!   `active_at`) plus the signing delay, the
//!   longest token lifetime and the leeway have passed; then **removed**: no
//!   longer published, its tokens refused, and the next ring write deletes it.
//! - A key revoked by an immediate rotation is removed at once.
//!
//! A process signs with a key only once its own clock is `leeway` seconds past
//! `active_at` ([`RingKey::signs_from`]): with clocks within the leeway of
//! each other, no token carries a key before its `active_at` by anybody's
//! clock. An immediate rotation has no such delay: the old key is leaked, and
//! a token nobody can verify yet is better than one an attacker can forge.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }
}

/// One key of the ring, as stored (the private key sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingKey {
    pub kid: String,
    /// Unix seconds.
    pub created_at: i64,
    pub active_at: i64,
    /// Set by an immediate rotation: every token of this key is dead.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Activated at once (an immediate rotation or the first key): signs
    /// without the leeway's delay.
    #[serde(default)]
    pub immediate: bool,
    /// base64url of the Ed25519 public key.
    pub public_key: String,
    /// AES-256-GCM sealed PKCS#8, base64 (nonce then ciphertext).
    pub sealed_private_key: String,
}

/// The times a ring's keys are judged by.
#[derive(Debug, Clone, Copy)]
pub struct RingTimes {
    pub leeway: i64,
    /// The longest lifetime a token can have.
    pub max_token_ttl: i64,
}

impl RingKey {
    /// When this process may start signing with the key.
    pub fn signs_from(&self, times: RingTimes) -> i64 {
        if self.immediate {
            self.active_at
        } else {
            self.active_at.saturating_add(times.leeway)
        }
    }

    /// When a newer key takes over: the earliest `active_at` of the
    /// unrevoked keys after it. Derived, not stored, so that two rotations
    /// racing each other cannot leave a key that is never retired.
    pub fn retire_at(&self, ring: &[RingKey]) -> Option<i64> {
        ring.iter()
            .filter(|k| {
                k.revoked_at.is_none() && (k.active_at, &k.kid) > (self.active_at, &self.kid)
            })
            .map(|k| k.active_at)
            .min()
    }

    /// When the last token it may have signed is dead: then it is removed.
    pub fn removed_at(&self, ring: &[RingKey], times: RingTimes) -> Option<i64> {
        if let Some(at) = self.revoked_at {
            return Some(at);
        }
        self.retire_at(ring).map(|at| {
            at.saturating_add(times.leeway)
                .saturating_add(times.max_token_ttl)
                .saturating_add(times.leeway)
        })
    }

    pub fn state(&self, ring: &[RingKey], now: i64, times: RingTimes) -> KeyState {
        if self.removed_at(ring, times).is_some_and(|at| at <= now) {
            return KeyState::Removed;
        }
        if self.active_at > now {
            return KeyState::Next;
        }
        let newer_active = ring.iter().any(|k| {
            k.kid != self.kid
                && k.revoked_at.is_none()
                && k.active_at <= now
                && (k.active_at, &k.kid) > (self.active_at, &self.kid)
        });
        if newer_active {
            KeyState::Retired
        } else {
            KeyState::Active
        }
    }
}

/// The key that signs at `now`: the latest unrevoked key whose signing time
/// has come; failing that (a clock behind an immediate rotation's), the
/// earliest unrevoked key, so that something always signs.
pub fn signer(ring: &[RingKey], now: i64, times: RingTimes) -> Option<&RingKey> {
    let live = || ring.iter().filter(|k| k.revoked_at.is_none());
    live()
        .filter(|k| k.signs_from(times) <= now)
        .max_by(|a, b| (a.active_at, &a.kid).cmp(&(b.active_at, &b.kid)))
        .or_else(|| live().min_by(|a, b| (a.active_at, &a.kid).cmp(&(b.active_at, &b.kid))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: RingTimes = RingTimes {
        leeway: 30,
        max_token_ttl: 1000,
    };

    fn key(kid: &str, active_at: i64) -> RingKey {
        RingKey {
            kid: kid.into(),
            created_at: 0,
            active_at,
            revoked_at: None,
            immediate: false,
            public_key: String::new(),
            sealed_private_key: String::new(),
        }
    }

    #[test]
    fn a_next_key_signs_only_a_leeway_after_its_active_at() {
        let ring = vec![key("a", 0), key("b", 100)];
        assert_eq!(signer(&ring, 99, TIMES).unwrap().kid, "a");
        assert_eq!(signer(&ring, 129, TIMES).unwrap().kid, "a");
        assert_eq!(signer(&ring, 130, TIMES).unwrap().kid, "b");
        assert_eq!(ring[1].state(&ring, 99, TIMES), KeyState::Next);
        assert_eq!(ring[1].state(&ring, 100, TIMES), KeyState::Active);
        assert_eq!(ring[0].state(&ring, 100, TIMES), KeyState::Retired);
        assert_eq!(
            ring[0].state(&ring, 100 + 30 + 1000 + 30, TIMES),
            KeyState::Removed
        );
    }

    #[test]
    fn a_revoked_key_never_signs_and_is_removed_at_once() {
        let mut old = key("a", 0);
        old.revoked_at = Some(50);
        let mut new = key("b", 50);
        new.immediate = true;
        let ring = vec![old, new];
        assert_eq!(signer(&ring, 50, TIMES).unwrap().kid, "b");
        assert_eq!(signer(&ring, 40, TIMES).unwrap().kid, "b");
        assert_eq!(ring[0].state(&ring, 50, TIMES), KeyState::Removed);
    }
}
