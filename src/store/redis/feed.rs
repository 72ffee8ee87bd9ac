//! The revocation feed: a subscription to the channel every revocation is
//! announced on (by the script that records it, `scripts/revoke_at.lua`).
//!
//! An announcement's payload is the instance id, or `<instance id> <origin>
//! <nonce>` when its announcer waits for acknowledgements: this process
//! applies it, then acknowledges on the origin's channel. The same connection
//! is subscribed to this process's own acknowledgement channel, and the
//! process's heartbeat is written before the subscription is reported and on
//! every ping: a process that is not in the registry never trusts its view
//! (see `heartbeat.rs`). It also listens to the keyspace notifications of
//! what the view holds (`keyspace.rs`), so that writes the broker did not
//! make reach the view too; on a cluster, through a subscription on every
//! primary (`cluster_feed.rs`).

use std::time::Duration;

use futures_util::StreamExt;

use super::cluster_feed::{self, Watchers};
use super::{heartbeat, keyspace, unavailable, RedisStore};
use crate::store::{RevocationFeed, StoreError};

/// How often the revocation feed's connection must prove it is alive; a view
/// that has not heard from it for [`crate::app::revocation_view::STALE_AFTER`]
/// is not trusted.
pub const FEED_PING_INTERVAL: Duration = Duration::from_millis(250);

/// On a cluster, how many pings apart the feed checks that its keyspace
/// subscriptions still cover the primaries (`cluster_feed.rs`): a second.
const CLUSTER_CHECK_TICKS: u32 = 4;

/// The next keyspace notification from a cluster's primaries; never, when
/// there are none to wait for.
async fn next_keyspace(watchers: &mut Option<Watchers>) -> Option<redis::Msg> {
    match watchers {
        Some(watchers) => watchers.next().await,
        None => std::future::pending().await,
    }
}

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
    let me = feed.process_id();
    let acks = store.ack_channel(me);
    let mut channels = vec![store.revocations_channel()];
    if !me.is_empty() {
        channels.push(acks.clone());
    }
    tokio::time::timeout(store.timeout, sink.subscribe(channels))
        .await
        .map_err(|_| lost("timed out subscribing"))?
        .map_err(unavailable)?;
    let mut watchers = None;
    let watched = if store.is_cluster() {
        watchers = tokio::time::timeout(store.timeout * 2, cluster_feed::watch(store))
            .await
            .map_err(|_| lost("timed out subscribing to every primary"))??;
        watchers.is_some()
    } else {
        let mut conn = store.conn()?;
        let watched = tokio::time::timeout(store.timeout, keyspace::enable(&mut conn))
            .await
            .map_err(|_| lost("timed out enabling keyspace notifications"))??;
        if watched {
            tokio::time::timeout(store.timeout, sink.psubscribe(keyspace::patterns(store)))
                .await
                .map_err(|_| lost("timed out subscribing"))?
                .map_err(unavailable)?;
        }
        watched
    };
    if !me.is_empty() {
        tokio::time::timeout(store.timeout, heartbeat::beat(store, me))
            .await
            .map_err(|_| lost("timed out writing the heartbeat"))??;
    }
    feed.keyspace_watched(watched);
    feed.subscribed();
    let mut ping = tokio::time::interval(FEED_PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            message = next_keyspace(&mut watchers) => {
                let message = message.ok_or_else(|| lost("a primary's keyspace subscription was closed"))?;
                if let Some(instance_id) = keyspace::instance_of(message.get_channel_name()) {
                    feed.changed(instance_id);
                }
            }
            message = stream.next() => {
                let message = message.ok_or_else(|| lost("the connection was closed"))?;
                if let Some(instance_id) = keyspace::instance_of(message.get_channel_name()) {
                    feed.changed(instance_id);
                    continue;
                }
                let payload: String = message
                    .get_payload()
                    .map_err(|_| lost("a message without an instance id"))?;
                if !me.is_empty() && message.get_channel_name() == acks {
                    if let Some((nonce, process)) = payload.split_once(' ') {
                        feed.acknowledged(nonce, process);
                    }
                    continue;
                }
                let mut parts = payload.split(' ');
                let instance_id = parts.next().unwrap_or_default();
                if instance_id == super::ring::RING_PAYLOAD {
                    feed.ring_changed();
                    continue;
                }
                feed.changed(instance_id);
                if let (Some(origin), Some(nonce), false) = (parts.next(), parts.next(), me.is_empty()) {
                    tokio::time::timeout(store.timeout, heartbeat::acknowledge(store, origin, nonce, me))
                        .await
                        .map_err(|_| lost("timed out acknowledging"))??;
                }
            }
            _ = ping.tick() => {
                tokio::time::timeout(FEED_PING_INTERVAL, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| lost("no answer to a ping"))?
                    .map_err(unavailable)?;
                if let Some(watchers) = &mut watchers {
                    watchers.ping(FEED_PING_INTERVAL).await?;
                }
                ticks = ticks.wrapping_add(1);
                if store.is_cluster() && ticks % CLUSTER_CHECK_TICKS == 0 {
                    let stale = tokio::time::timeout(store.timeout, cluster_feed::stale(store, watchers.as_ref()))
                        .await
                        .map_err(|_| lost("timed out reading the cluster's primaries"))??;
                    if stale {
                        return Err(lost("the cluster's primaries changed; following them again"));
                    }
                }
                if !me.is_empty() {
                    tokio::time::timeout(FEED_PING_INTERVAL, heartbeat::beat(store, me))
                        .await
                        .map_err(|_| lost("no answer to a heartbeat"))??;
                }
                feed.alive();
            }
        }
    }
}
