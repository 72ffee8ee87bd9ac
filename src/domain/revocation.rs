//! The revocation rule (SPEC §5): what the lists that could name one token say
//! about it.

/// What the revocation lists say about one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    pub jti: bool,
    pub sid: bool,
    /// Tokens of this credential issued at or before this unix second are dead
    /// once it has passed (a rotation grace puts it in the future).
    pub credential_before: Option<i64>,
    /// Tokens of this instance issued at or before this unix second are dead.
    pub instance_before: Option<i64>,
}

impl Revocations {
    /// Whether a token issued at `issued_at` is dead at `now` (unix seconds).
    pub fn revokes(&self, issued_at: i64, now: i64) -> bool {
        self.jti
            || self.sid
            || self
                .credential_before
                .is_some_and(|t| t <= now && issued_at <= t)
            || self.instance_before.is_some_and(|t| issued_at <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_in_the_future_revokes_nothing_yet() {
        let grace = Revocations {
            credential_before: Some(100),
            ..Default::default()
        };
        assert!(!grace.revokes(50, 99));
        assert!(grace.revokes(50, 100));
        assert!(!grace.revokes(101, 200));
    }

    #[test]
    fn an_instance_revocation_kills_what_was_issued_by_then() {
        let all = Revocations {
            instance_before: Some(100),
            ..Default::default()
        };
        assert!(all.revokes(100, 100));
        assert!(!all.revokes(101, 101));
        assert!(Revocations {
            jti: true,
            ..Default::default()
        }
        .revokes(0, 0));
    }
}
