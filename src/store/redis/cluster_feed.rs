//! Keyspace notifications on a Redis Cluster. A cluster node publishes them
//! only to its own subscribers (unlike `PUBLISH`, which the cluster bus
//! forwards), so the feed subscribes to them on every primary, each on a
//! connection of its own, and pings each like the main one.
//!
//! The view may answer from memory only while these subscriptions cover
//! every slot: when the slot map is incomplete (a failover under way) no
//! watcher is set up and product requests read the store, and when the set
//! of primaries changes (a failover done, a resharding) the feed is given
//! up and followed again over the new primaries.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::stream::SelectAll;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::Msg;

use super::{keyspace, unavailable, RedisStore};
use crate::store::StoreError;

const SLOTS: usize = 16384;

pub(super) struct Watchers {
    primaries: BTreeSet<String>,
    sinks: Vec<PubSubSink>,
    streams: SelectAll<PubSubStream>,
}

/// The primaries serving slots, as `host:port`, and how many slots they serve.
async fn primaries(store: &RedisStore) -> Result<(BTreeSet<String>, usize), StoreError> {
    let mut conn = store.conn()?;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let mut primaries = BTreeSet::new();
    let mut covered = 0;
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let flags: Vec<&str> = flags.split(',').collect();
        let serving = flags.contains(&"master")
            && !flags
                .iter()
                .any(|f| matches!(*f, "fail" | "fail?" | "handshake" | "noaddr"));
        let slots: usize = fields.iter().skip(8).map(|range| slot_count(range)).sum();
        if serving && slots > 0 {
            let address = address.split(['@', ',']).next().unwrap_or(address);
            primaries.insert(address.to_owned());
            covered += slots;
        }
    }
    Ok((primaries, covered))
}

/// `0-5460` or `5461`; `[…]` entries are slots being migrated, counted where
/// they are now.
fn slot_count(range: &str) -> usize {
    if range.starts_with('[') {
        return 0;
    }
    match range.split_once('-') {
        Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if b >= a => b - a + 1,
            _ => 0,
        },
        None => usize::from(range.parse::<usize>().is_ok()),
    }
}

/// Subscribes to the keyspace notifications of every primary; `None` when
/// they cannot cover every slot (or a primary refuses to publish them).
pub(super) async fn watch(store: &RedisStore) -> Result<Option<Watchers>, StoreError> {
    let (primaries, covered) = primaries(store).await?;
    if covered < SLOTS {
        return Ok(None);
    }
    let mut sinks = Vec::new();
    let mut streams = SelectAll::new();
    for address in &primaries {
        let client = store.node_client(address)?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(unavailable)?;
        if !keyspace::enable(&mut conn).await? {
            return Ok(None);
        }
        let (mut sink, stream) = client
            .get_async_pubsub()
            .await
            .map_err(unavailable)?
            .split();
        sink.psubscribe(keyspace::patterns(store))
            .await
            .map_err(unavailable)?;
        sinks.push(sink);
        streams.push(stream);
    }
    Ok(Some(Watchers {
        primaries,
        sinks,
        streams,
    }))
}

impl Watchers {
    pub(super) async fn next(&mut self) -> Option<Msg> {
        self.streams.next().await
    }

    /// Every subscription answers a ping within `within`.
    pub(super) async fn ping(&mut self, within: Duration) -> Result<(), StoreError> {
        for sink in &mut self.sinks {
            tokio::time::timeout(within, sink.ping::<redis::Value>())
                .await
                .map_err(|_| {
                    StoreError::Unavailable("a keyspace subscription did not answer a ping".into())
                })?
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// Whether the feed must be followed again: the primaries changed since
/// `watchers` subscribed, or, without watchers, every slot is served again.
pub(super) async fn stale(
    store: &RedisStore,
    watchers: Option<&Watchers>,
) -> Result<bool, StoreError> {
    let (primaries, covered) = primaries(store).await?;
    Ok(match watchers {
        Some(watchers) => watchers.primaries != primaries,
        None => covered >= SLOTS,
    })
}

#[cfg(test)]
mod tests {
    use super::slot_count;

    #[test]
    fn slot_ranges_count_as_cluster_nodes_lists_them() {
        assert_eq!(slot_count("0-5460"), 5461);
        assert_eq!(slot_count("5461"), 1);
        assert_eq!(slot_count("[5461->-abc]"), 0);
        assert_eq!(slot_count("x"), 0);
    }
}
