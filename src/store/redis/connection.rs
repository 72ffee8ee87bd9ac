//! Connecting, and the connection each thread uses: to one Redis node, or to
//! a Redis Cluster (`cluster.rs`), behind one [`Conn`] that every command of
//! this module goes through.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use super::cluster::{tcp_settings, Cluster};
use super::scripts::Scripts;
use super::{unavailable, RedisStore};
use crate::store::{Store, StoreError};

/// What a store talks to.
#[derive(Clone)]
pub(super) enum Target {
    Node {
        client: Box<redis::Client>,
        config: ConnectionManagerConfig,
    },
    Cluster(Arc<Cluster>),
}

/// One thread's connection: to the node, or to every node of the cluster
/// (commands routed by their keys' hash slot).
#[derive(Clone)]
pub(super) enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisStore {
    /// Connects to one Redis node and checks that it answers; fails fast
    /// when it does not.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let info = url
            .into_connection_info()
            .map_err(unavailable)?
            .set_tcp_settings(tcp_settings());
        let client = redis::Client::open(info).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Self::checked(
            Target::Node {
                client: Box::new(client),
                config,
            },
            prefix,
            timeout,
        )
        .await
    }

    /// Connects to a Redis Cluster through its seed nodes (SPEC §13); see
    /// `cluster.rs` for what changes on a cluster.
    pub async fn connect_cluster(
        nodes: &[String],
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let cluster = Cluster::new(nodes, timeout)?;
        Self::checked(Target::Cluster(Arc::new(cluster)), prefix, timeout).await
    }

    async fn checked(target: Target, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let store = RedisStore {
            target,
            timeout,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            prefix: prefix.to_owned(),
            scripts: Scripts::load(),
            skipped_instances: Arc::default(),
        };
        tokio::time::timeout(timeout * 2, store.ping())
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to Redis".into()))??;
        Ok(store)
    }

    /// This thread's connection, made on first use (it then reconnects by
    /// itself when Redis comes back, or a cluster's topology changes).
    pub(super) fn conn(&self) -> Result<Conn, StoreError> {
        thread_local! {
            static CONNECTIONS: RefCell<HashMap<u64, Conn>> = RefCell::new(HashMap::new());
        }
        CONNECTIONS.with(|connections| {
            let mut connections = connections.borrow_mut();
            if let Some(conn) = connections.get(&self.id) {
                return Ok(conn.clone());
            }
            let conn = match &self.target {
                Target::Node { client, config } => Conn::Node(
                    ConnectionManager::new_lazy_with_config((**client).clone(), config.clone())
                        .map_err(unavailable)?,
                ),
                Target::Cluster(cluster) => Conn::Cluster(cluster.connection()),
            };
            connections.insert(self.id, conn.clone());
            Ok(conn)
        })
    }

    /// A client for one node of the cluster, `host:port`.
    pub(super) fn node_client(&self, address: &str) -> Result<redis::Client, StoreError> {
        match &self.target {
            Target::Cluster(cluster) => cluster.node_client(address),
            Target::Node { client, .. } => Ok((**client).clone()),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// A client for a dedicated pub/sub connection: the node, or the next
    /// seed node of the cluster in turn.
    pub(super) fn pubsub_client(&self) -> redis::Client {
        match &self.target {
            Target::Node { client, .. } => (**client).clone(),
            Target::Cluster(cluster) => cluster.next_pubsub_client(),
        }
    }
}

pub(super) async fn ping(store: &RedisStore) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    if let Conn::Cluster(conn) = &mut conn {
        return Cluster::ping(conn).await;
    }
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[cfg(test)]
impl RedisStore {
    /// A store that never connects: for tests of key names.
    pub(super) fn unconnected(prefix: &str) -> Self {
        let client = redis::Client::open("redis://127.0.0.1:1/").expect("a valid URL");
        RedisStore {
            target: Target::Node {
                client: Box::new(client),
                config: ConnectionManagerConfig::new(),
            },
            timeout: Duration::from_secs(1),
            id: u64::MAX,
            prefix: prefix.to_owned(),
            scripts: Scripts::load(),
            skipped_instances: Arc::default(),
        }
    }
}
