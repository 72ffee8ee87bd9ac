//! The revocation feed: a subscription to the channel every revocation is
//! announced on (by the script that records it, `scripts/revoke_at.lua`).

use std::time::Duration;

use futures_util::StreamExt;

use super::{unavailable, RedisStore};
use crate::store::{RevocationFeed, StoreError};

/// How often the revocation feed's connection must prove it is alive; a view
/// that has not heard from it for [`crate::app::revocation_view::STALE_AFTER`]
/// is not trusted.
pub const FEED_PING_INTERVAL: Duration = Duration::from_millis(250);

/// A dedicated pub/sub connection, pinged every [`FEED_PING_INTERVAL`]: a
/// subscription that dies silently (no reset, no EOF) is noticed by its
/// missing answer, not trusted until the TCP keepalive gives up.
pub(super) async fn follow(
    store: &RedisStore,
    feed: &dyn RevocationFeed,
) -> Result<(), StoreError> {
    let lost = |why: &str| StoreError::Unavailable(format!("revocation feed: {why}"));
    let pubsub = tokio::time::timeout(store.timeout, store.pubsub_client().get_async_pubsub())
        .await
        .map_err(|_| lost("timed out connecting"))?
        .map_err(unavailable)?;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(store.timeout, sink.subscribe(store.revocations_channel()))
        .await
        .map_err(|_| lost("timed out subscribing"))?
        .map_err(unavailable)?;
    feed.subscribed();
    let mut ping = tokio::time::interval(FEED_PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = message.ok_or_else(|| lost("the connection was closed"))?;
                let instance_id: String = message
                    .get_payload()
                    .map_err(|_| lost("a message without an instance id"))?;
                if instance_id == super::ring::RING_PAYLOAD {
                    feed.ring_changed();
                } else {
                    feed.changed(&instance_id);
                }
            }
            _ = ping.tick() => {
                tokio::time::timeout(FEED_PING_INTERVAL, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| lost("no answer to a ping"))?
                    .map_err(unavailable)?;
                feed.alive();
            }
        }
    }
}
