//! The product hot path's store round trip, and when it is skipped.
//!
//! A product request needs four facts that every process shares: the
//! instance's configuration epoch (are the cached limits and products
//! current?), the caller's revocation state (or an experience token's fate),
//! and a unit of each rate-limit window. While the process's revocation feed
//! is live, the first three come from the local view
//! (`revocation_view.rs`), which forgets them when a change is announced,
//! and the units from quota leases (`leases.rs`). A request that finds all
//! of them local makes no round trip; anything missing (a token not seen
//! before, an epoch that moved or was not read for a second, a lease run
//! out) is read in one script call that also takes the leases.
//!
//! While the feed is not live, every request makes the round trip it made
//! before leases existed (`Store::gateway_check`: one hit per window,
//! revocations read in the same script), failing closed when the store does
//! not answer. The memory store has no feed and always does.

use super::leases::{self, Slot, LEASE_SHARE};
use super::revocation_view::{ExperienceFate, Lookup};
use super::AppState;
use crate::store::{Caller, GatewayCheck, GatewayState, StoreError, Window};
use crate::tokens::Claims;

impl AppState {
    /// What the store says for this request (or would say: see the module
    /// doc). `claims` are the access token's; `cached_epoch` the epoch of
    /// the configuration the request was checked on. Says whether the
    /// counts came from leases (which are tied to the windows' limits).
    pub(super) async fn product_state(
        &self,
        check: GatewayCheck<'_>,
        claims: Option<&Claims>,
        cached_epoch: u64,
    ) -> Result<(GatewayState, bool), StoreError> {
        if !self.store.has_revocation_feed() {
            return Ok((self.store.gateway_check(check).await?, false));
        }
        let id = check.instance_id;
        // Taken before anything is read: an announcement after this makes
        // what is read stale.
        let Some(ticket) = self.revocations.ticket(id) else {
            return Ok((self.store.gateway_check(check).await?, false));
        };
        let now = self.now();
        let mono = self.leases.now_ms();
        let mut state = GatewayState {
            epoch: cached_epoch,
            ..GatewayState::default()
        };
        let epoch_known = self.revocations.epoch(id) == Some(cached_epoch);
        let subject_known = match (check.caller, claims) {
            (Caller::Token { .. }, Some(claims)) => match self.revocations.lookup(claims) {
                Lookup::Known(revocations) => {
                    state.revocations = revocations;
                    true
                }
                Lookup::Ask(_) => false,
            },
            (Caller::Experience { credential_id }, _) => {
                match self.revocations.experience(id, credential_id) {
                    Some(fate) => {
                        state.credential_exists = fate.exists;
                        state.credential_dead_at = fate.dead_at;
                        true
                    }
                    None => false,
                }
            }
            (Caller::Token { .. }, None) => false,
        };
        let slots = self.leases.take(id, check.windows, mono);
        let decided = leases::decided(&slots);
        if epoch_known && subject_known && decided {
            self.metrics.lease_local();
            state.counts = leases::counts(check.windows, &slots);
            return Ok((state, true));
        }

        let (asked, asks): (Vec<Window>, Vec<u64>) = if decided {
            (Vec::new(), Vec::new())
        } else {
            check
                .windows
                .iter()
                .zip(&slots)
                .filter_map(|(w, s)| match s {
                    Slot::Ask(n) => Some((w.clone(), *n)),
                    _ => None,
                })
                .unzip()
        };
        let (fresh, grants) = self
            .store
            .gateway_lease(
                GatewayCheck {
                    instance_id: id,
                    caller: check.caller,
                    windows: &asked,
                },
                &asks,
                LEASE_SHARE,
            )
            .await?;
        self.metrics.lease_round_trip();
        let experience = match check.caller {
            Caller::Experience { credential_id } => Some((
                credential_id,
                ExperienceFate {
                    exists: fresh.credential_exists,
                    dead_at: fresh.credential_dead_at,
                },
            )),
            Caller::Token { .. } => None,
        };
        self.revocations
            .remember_facts(ticket, id, fresh.epoch, experience);
        if let Some(claims) = claims {
            self.revocations
                .remember(ticket, claims, &fresh.revocations, now.timestamp());
        }
        let slots = if decided {
            slots
        } else {
            self.leases.settle(
                id,
                check.windows,
                slots,
                &grants,
                mono,
                now.timestamp_millis(),
            )
        };
        let state = GatewayState {
            counts: leases::counts(check.windows, &slots),
            ..fresh
        };
        Ok((state, true))
    }
}
