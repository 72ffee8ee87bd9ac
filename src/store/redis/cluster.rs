//! The Redis Cluster backend (SPEC §13): the same keys, scripts and
//! trait implementation as on one node, over a cluster connection that
//! routes each command by its keys' hash slot. What differs:
//!
//! - **One slot per command.** Every script, `MULTI` and pipeline touches
//!   keys of one hash tag (`keys.rs`). Writes that span tags (an instance and
//!   its index entries) are sequences of one-slot steps, ordered so that a
//!   sequence cut short leaves nothing usable: see `instances.rs` and
//!   `credentials.rs`.
//! - **Durable writes wait for a replica.** Instances, credentials, domain
//!   keys, experiences, revocations and the signing-key ring are
//!   acknowledged only once `WAIT 1` says one replica has them (bounded by
//!   [`replica_wait`]; past it the write answers 503 and says so; see
//!   `durable.rs`). A failover
//!   promotes a replica, so an acknowledged write survives it. Counters
//!   (rate limits, usage, last use, audit) do not wait: a failover may lose
//!   their last moments of increments, never more than what the primary had
//!   not yet streamed to its replica (well under a second on a healthy link).
//! - **Announcements.** `PUBLISH` on a cluster reaches every node's
//!   subscribers (the cluster bus forwards it), so the revocation feed
//!   subscribes to any one node: the seed nodes are tried in turn. Cluster-wide
//!   `PUBLISH` rather than sharded pub/sub because the feed is one channel of
//!   rare messages that every process wants whole; sharding it would mean one
//!   subscription per slot owner and gain nothing at this volume. When the
//!   subscribed node dies the feed fails, the local views fall back to the
//!   store (fail closed, as on one node) and the next attempt takes the next
//!   seed node.
//! - **Failover.** The client follows `MOVED`/`ASK` and refreshes the slot
//!   map when a node stops answering; while a slot has no primary, the
//!   requests that need it fail within the store timeout (503
//!   `store_unavailable`) and the others go on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};

use super::unavailable;
use crate::store::StoreError;
use redis::io::tcp::TcpSettings;

pub(super) struct Cluster {
    client: redis::cluster::ClusterClient,
    timeout: Duration,
    /// The seed nodes, for the revocation feed's subscription.
    seeds: Vec<redis::Client>,
    next_seed: AtomicUsize,
}

/// Commands are small and latency-bound: Nagle's algorithm would hold them
/// back waiting for ACKs (tens of milliseconds at moderate load). For a
/// single node's connections too.
pub(super) fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// How long a durable write waits for a replica before it answers 503.
pub(super) fn replica_wait(timeout: Duration) -> Duration {
    timeout / 2
}

impl Cluster {
    pub(super) fn new(nodes: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .tcp_settings(tcp_settings())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // A request must fail within the store timeout when its slot has
            // no primary (fail closed), not retry through a whole failover.
            .overall_response_timeout(Some(timeout))
            .retries(3)
            .min_retry_wait(20)
            .max_retry_wait(250)
            .build()
            .map_err(unavailable)?;
        let seeds = nodes
            .iter()
            .map(|node| redis::Client::open(node.as_str()).map_err(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cluster {
            client,
            timeout,
            seeds,
            next_seed: AtomicUsize::new(0),
        })
    }

    /// A connection that connects in the background; its first command
    /// waits for it.
    pub(super) fn connection(&self) -> ClusterConnection {
        let config = ClusterConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        self.client.get_pending_async_connection_with_config(config)
    }

    /// Reachable while any primary answers: a broker whose cluster lost
    /// one primary still serves every other slot, so it stays ready (a
    /// readiness probe failing on every broker at once would turn a
    /// failover's partial 503s into a full outage).
    pub(super) async fn ping(conn: &mut ClusterConnection) -> Result<(), StoreError> {
        let routing = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::OneSucceeded),
        ));
        conn.route_command(redis::cmd("PING"), routing)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A client for one node, `host:port`, with the seed nodes' settings
    /// (credentials, TCP).
    pub(super) fn node_client(&self, address: &str) -> Result<redis::Client, StoreError> {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
            .ok_or_else(|| {
                StoreError::Unavailable(format!("a node address without a port: {address}"))
            })?;
        let info = self.seeds[0]
            .get_connection_info()
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host, port));
        redis::Client::open(info).map_err(unavailable)
    }

    pub(super) fn next_pubsub_client(&self) -> redis::Client {
        let i = self.next_seed.fetch_add(1, Ordering::Relaxed);
        self.seeds[i % self.seeds.len()].clone()
    }
}
