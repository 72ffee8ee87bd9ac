//! A local view of the revocation lists, for the routes that have no shared
//! counter to update: `/v1/apis`, `/v1/refreshToken` and `/v1/introspect`.
//!
//! Redis stays the only record of revocations. The view remembers what Redis
//! said about a token (its four lists, see [`Revocations`]) and is trusted
//! only while the process's subscription to the revocation feed is known to
//! be live:
//!
//! - every revocation is announced on the feed by the script that records it,
//!   and an announcement makes every answer remembered for that instance stale;
//! - an answer is remembered with the feed's generation and the instance's
//!   version taken *before* Redis was asked, so an announcement that crosses
//!   the read leaves it stale rather than current;
//! - when the subscription is lost (closed, or silent for [`STALE_AFTER`]),
//!   the view forgets everything and every check asks Redis again — failing
//!   closed with a 503 when Redis does not answer — until a new subscription
//!   is confirmed. A revocation announced while nobody listened is therefore
//!   read from Redis, never missed.
//!
//! Product requests (`/prod/…`, `/v1/verify`) use the view too (see
//! `app/hot_path.rs`), with two more kinds of fact: an instance's epoch and
//! an experience token's fate. Changes to those are announced after they
//! are written (not in the same script), so a fact is trusted for at most
//! [`FACT_TRUST`]: were the announcer to die between its write and its
//! announcement, no process would keep the old state longer than that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{RevocationFeed, Revocations};
use crate::tokens::Claims;

/// A view that has not heard from its subscription for this long (pings go
/// every `FEED_PING_INTERVAL`) is not trusted.
pub const STALE_AFTER: Duration = Duration::from_secs(1);

/// An instance's epoch or an experience token's fate is read again after
/// this long, announcement or not.
pub const FACT_TRUST: Duration = Duration::from_secs(1);

/// At most this many tokens are remembered; past it, expired tokens go first,
/// then everything.
const CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
pub struct RevocationView {
    state: Mutex<ViewState>,
}

#[derive(Debug, Default)]
struct ViewState {
    /// Whether a subscription is confirmed and not known to be lost.
    live: bool,
    /// Whether the feed reports every write, not only the broker's own
    /// announcements: required for product requests.
    keyspace: bool,
    /// Bumped whenever a subscription begins or ends; older answers are dead.
    generation: u64,
    last_heard: Option<Instant>,
    /// Bumped by each announcement about the instance.
    versions: HashMap<String, u64>,
    /// By `jti`.
    entries: HashMap<String, Entry>,
    /// Instance epochs, by instance id.
    epochs: HashMap<String, Fact<u64>>,
    /// Experience tokens' fates, by credential id.
    experiences: HashMap<String, Fact<ExperienceFate>>,
}

#[derive(Debug)]
struct Fact<T> {
    ticket: Ticket,
    instance_id: String,
    read_at: Instant,
    value: T,
}

/// What the store says of an experience token: whether its credential
/// exists, and when it was revoked or its grace ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExperienceFate {
    pub exists: bool,
    pub dead_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug)]
struct Entry {
    ticket: Ticket,
    instance_id: String,
    sid: String,
    cred: String,
    exp: i64,
    revocations: Revocations,
}

/// What the view looked like before Redis was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    version: u64,
}

/// The view's answer for one token.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// What Redis said, still current.
    Known(Revocations),
    /// Ask Redis; remember its answer with the ticket, if there is one.
    Ask(Option<Ticket>),
}

impl RevocationView {
    pub fn lookup(&self, claims: &Claims) -> Lookup {
        self.lookup_at(claims, Instant::now())
    }

    fn lookup_at(&self, claims: &Claims, now: Instant) -> Lookup {
        let state = self.lock();
        if !state.trusted(now) {
            return Lookup::Ask(None);
        }
        let ticket = state.ticket(&claims.sub);
        match state.entries.get(&claims.jti) {
            Some(entry)
                if entry.ticket == ticket
                    && entry.instance_id == claims.sub
                    && entry.sid == claims.sid
                    && entry.cred == claims.cred =>
            {
                Lookup::Known(entry.revocations.clone())
            }
            _ => Lookup::Ask(Some(ticket)),
        }
    }

    /// Remembers what Redis said, unless the subscription changed since the
    /// ticket was taken. `now` is the token clock's (unix seconds).
    pub fn remember(&self, ticket: Ticket, claims: &Claims, revocations: &Revocations, now: i64) {
        let mut state = self.lock();
        if !state.live || ticket.generation != state.generation {
            return;
        }
        if state.entries.len() >= CAPACITY {
            state.entries.retain(|_, entry| entry.exp > now);
            if state.entries.len() >= CAPACITY {
                state.entries.clear();
            }
        }
        state.entries.insert(
            claims.jti.clone(),
            Entry {
                ticket,
                instance_id: claims.sub.clone(),
                sid: claims.sid.clone(),
                cred: claims.cred.clone(),
                exp: claims.exp,
                revocations: revocations.clone(),
            },
        );
    }

    /// The ticket to take before asking the store, while the view is
    /// trusted for product requests: live, and told of every write.
    pub fn ticket(&self, instance_id: &str) -> Option<Ticket> {
        let state = self.lock();
        (state.keyspace && state.trusted(Instant::now())).then(|| state.ticket(instance_id))
    }

    /// Whether the subscription about to be confirmed reports every write.
    pub fn keyspace_watched(&self, watched: bool) {
        self.lock().keyspace = watched;
    }

    /// The instance's epoch, if the store said it under a ticket still
    /// current, less than [`FACT_TRUST`] ago.
    pub fn epoch(&self, instance_id: &str) -> Option<u64> {
        self.epoch_at(instance_id, Instant::now())
    }

    fn epoch_at(&self, instance_id: &str, now: Instant) -> Option<u64> {
        let state = self.lock();
        state
            .fact(&state.epochs, instance_id, instance_id, now)
            .copied()
    }

    /// The experience token's fate, on the same terms as [`Self::epoch`].
    pub fn experience(&self, instance_id: &str, credential_id: &str) -> Option<ExperienceFate> {
        let state = self.lock();
        state
            .fact(
                &state.experiences,
                credential_id,
                instance_id,
                Instant::now(),
            )
            .copied()
    }

    /// Remembers what the store said of the instance (its epoch) and, for
    /// an experience token, of its credential, under the ticket taken before
    /// asking.
    pub fn remember_facts(
        &self,
        ticket: Ticket,
        instance_id: &str,
        epoch: u64,
        experience: Option<(&str, ExperienceFate)>,
    ) {
        self.remember_facts_at(ticket, instance_id, epoch, experience, Instant::now());
    }

    fn remember_facts_at(
        &self,
        ticket: Ticket,
        instance_id: &str,
        epoch: u64,
        experience: Option<(&str, ExperienceFate)>,
        now: Instant,
    ) {
        let mut state = self.lock();
        if !state.live || ticket.generation != state.generation {
            return;
        }
        fn fact<T>(ticket: Ticket, instance_id: &str, now: Instant, value: T) -> Fact<T> {
            Fact {
                ticket,
                instance_id: instance_id.to_owned(),
                read_at: now,
                value,
            }
        }
        if state.epochs.len() >= CAPACITY {
            state.epochs.clear();
        }
        state.epochs.insert(
            instance_id.to_owned(),
            fact(ticket, instance_id, now, epoch),
        );
        if let Some((credential_id, fate)) = experience {
            if state.experiences.len() >= CAPACITY {
                state.experiences.clear();
            }
            state.experiences.insert(
                credential_id.to_owned(),
                fact(ticket, instance_id, now, fate),
            );
        }
    }

    /// The subscription ended (or never began): nothing remembered counts.
    /// Returns whether it had been live.
    pub fn lost(&self) -> bool {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
        state.epochs.clear();
        state.experiences.clear();
        std::mem::replace(&mut state.live, false)
    }

    /// Whether the view is trusted right now.
    pub fn is_live(&self) -> bool {
        self.lock().trusted(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ViewState> {
        // A panic while holding the lock cannot leave the state half-written
        // in a way that trusts more: every field is set in one statement.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn heard_at(&self, now: Instant) {
        self.lock().last_heard = Some(now);
    }

    fn subscribed_at(&self, now: Instant) {
        let mut state = self.lock();
        state.live = true;
        state.generation += 1;
        state.last_heard = Some(now);
        state.entries.clear();
        state.epochs.clear();
        state.experiences.clear();
    }
}

impl ViewState {
    fn trusted(&self, now: Instant) -> bool {
        self.live
            && self
                .last_heard
                .is_some_and(|t| now.saturating_duration_since(t) <= STALE_AFTER)
    }

    fn fact<'a, T>(
        &self,
        facts: &'a HashMap<String, Fact<T>>,
        key: &str,
        instance_id: &str,
        now: Instant,
    ) -> Option<&'a T> {
        if !self.trusted(now) {
            return None;
        }
        let fact = facts.get(key)?;
        (fact.instance_id == instance_id
            && fact.ticket == self.ticket(instance_id)
            && now.saturating_duration_since(fact.read_at) < FACT_TRUST)
            .then_some(&fact.value)
    }

    fn ticket(&self, instance_id: &str) -> Ticket {
        Ticket {
            generation: self.generation,
            version: self.versions.get(instance_id).copied().unwrap_or(0),
        }
    }
}

impl RevocationFeed for RevocationView {
    fn subscribed(&self) {
        self.subscribed_at(Instant::now());
    }

    fn changed(&self, instance_id: &str) {
        let mut state = self.lock();
        *state.versions.entry(instance_id.to_owned()).or_default() += 1;
        state.last_heard = Some(Instant::now());
    }

    fn alive(&self) {
        self.heard_at(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenKind;

    fn claims(instance: &str, jti: &str) -> Claims {
        Claims {
            iss: "https://broker.test".into(),
            sub: instance.into(),
            aud: "keybroker".into(),
            iat: 100,
            nbf: 100,
            exp: 1_000,
            jti: jti.into(),
            sid: format!("sid-{jti}"),
            cred: "sk_1".into(),
            kind: TokenKind::Server,
            org: None,
            auth_time: 100,
        }
    }

    fn clean() -> Revocations {
        Revocations::default()
    }

    /// Asks as a caller would and remembers Redis's answer.
    fn ask_and_remember(view: &RevocationView, claims: &Claims, answer: Revocations) {
        match view.lookup(claims) {
            Lookup::Ask(Some(ticket)) => view.remember(ticket, claims, &answer, 200),
            other => panic!("expected to ask with a ticket, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_trusted_before_a_subscription() {
        let view = RevocationView::default();
        let t = claims("ins_a", "j1");
        assert_eq!(view.lookup(&t), Lookup::Ask(None));
        assert!(!view.is_live());
    }

    #[test]
    fn a_remembered_answer_is_used_while_the_feed_is_live() {
        let view = RevocationView::default();
        view.subscribed();
        let t = claims("ins_a", "j1");
        ask_and_remember(&view, &t, clean());
        assert_eq!(view.lookup(&t), Lookup::Known(clean()));
    }

    #[test]
    fn an_announcement_makes_the_instance_s_answers_stale_and_no_other() {
        let view = RevocationView::default();
        view.subscribed();
        let a = claims("ins_a", "j1");
        let b = claims("ins_b", "j2");
        ask_and_remember(&view, &a, clean());
        ask_and_remember(&view, &b, clean());
        view.changed("ins_a");
        assert!(matches!(view.lookup(&a), Lookup::Ask(Some(_))));
        assert_eq!(view.lookup(&b), Lookup::Known(clean()));
    }

    #[test]
    fn an_announcement_that_crosses_the_read_leaves_the_answer_stale() {
        let view = RevocationView::default();
        view.subscribed();
        let t = claims("ins_a", "j1");
        let Lookup::Ask(Some(ticket)) = view.lookup(&t) else {
            panic!("expected a ticket");
        };
        // Redis answered "not revoked", but the revocation was announced
        // before that answer is remembered.
        view.changed("ins_a");
        view.remember(ticket, &t, &clean(), 200);
        assert!(matches!(view.lookup(&t), Lookup::Ask(Some(_))));
    }

    #[test]
    fn a_lost_subscription_forgets_everything_even_after_a_new_one() {
        let view = RevocationView::default();
        view.subscribed();
        let t = claims("ins_a", "j1");
        let Lookup::Ask(Some(old_ticket)) = view.lookup(&t) else {
            panic!("expected a ticket");
        };
        assert!(view.lost(), "the subscription was live");
        assert!(!view.lost(), "and is not any more");
        assert_eq!(view.lookup(&t), Lookup::Ask(None));
        // An answer read under the old subscription is not taken afterwards.
        view.subscribed();
        view.remember(old_ticket, &t, &clean(), 200);
        assert!(matches!(view.lookup(&t), Lookup::Ask(Some(_))));
    }

    #[test]
    fn a_silent_subscription_is_not_trusted() {
        let view = RevocationView::default();
        let start = Instant::now();
        view.subscribed_at(start);
        let t = claims("ins_a", "j1");
        ask_and_remember(&view, &t, clean());
        let later = start + STALE_AFTER + Duration::from_millis(1);
        assert_eq!(view.lookup_at(&t, later), Lookup::Ask(None));
        view.heard_at(later);
        assert_eq!(view.lookup_at(&t, later), Lookup::Known(clean()));
    }

    #[test]
    fn an_epoch_is_trusted_under_its_ticket_for_a_bounded_time() {
        let view = RevocationView::default();
        let start = Instant::now();
        view.keyspace_watched(true);
        view.subscribed_at(start);
        let ticket = view.ticket("ins_a").expect("the view is live");
        view.remember_facts_at(ticket, "ins_a", 7, None, start);
        assert_eq!(view.epoch_at("ins_a", start), Some(7));
        assert_eq!(view.epoch_at("ins_b", start), None);
        // Bounded even when nothing is announced (the feed keeps pinging).
        let later = start + FACT_TRUST;
        view.heard_at(later);
        assert_eq!(view.epoch_at("ins_a", later), None);
    }

    #[test]
    fn an_announcement_makes_facts_stale_even_across_the_read() {
        let view = RevocationView::default();
        assert_eq!(view.ticket("ins_a"), None, "not live");
        view.keyspace_watched(true);
        view.subscribed();
        let ticket = view.ticket("ins_a").expect("the view is live");
        // The change is announced while the store is being read.
        view.changed("ins_a");
        let fate = ExperienceFate {
            exists: true,
            dead_at: None,
        };
        view.remember_facts(ticket, "ins_a", 3, Some(("xt_1", fate)));
        assert_eq!(view.epoch("ins_a"), None);
        assert_eq!(view.experience("ins_a", "xt_1"), None);
        let ticket = view.ticket("ins_a").expect("the view is live");
        view.remember_facts(ticket, "ins_a", 4, Some(("xt_1", fate)));
        assert_eq!(view.epoch("ins_a"), Some(4));
        assert_eq!(view.experience("ins_a", "xt_1"), Some(fate));
        assert!(view.lost());
        assert_eq!(view.epoch("ins_a"), None, "a lost feed forgets facts");
    }

    #[test]
    fn an_entry_answers_only_for_the_token_it_was_read_for() {
        let view = RevocationView::default();
        view.subscribed();
        let t = claims("ins_a", "j1");
        ask_and_remember(&view, &t, clean());
        let mut other = t.clone();
        other.sid = "another-session".into();
        assert!(matches!(view.lookup(&other), Lookup::Ask(Some(_))));
    }
}
