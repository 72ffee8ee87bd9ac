//! Connecting, and the connection each thread uses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::IntoConnectionInfo;

use super::scripts::Scripts;
use super::{unavailable, RedisStore};
use crate::store::{Store, StoreError};

impl RedisStore {
    /// Connects and checks that Redis answers; fails fast when it does not.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        // Commands are small and latency-bound: Nagle's algorithm would hold
        // them back waiting for ACKs (tens of milliseconds at moderate load).
        let info = url
            .into_connection_info()
            .map_err(unavailable)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let store = RedisStore {
            client,
            config,
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
    /// itself when Redis comes back).
    pub(super) fn conn(&self) -> Result<ConnectionManager, StoreError> {
        thread_local! {
            static CONNECTIONS: RefCell<HashMap<u64, ConnectionManager>> = RefCell::new(HashMap::new());
        }
        CONNECTIONS
            .with(|connections| {
                let mut connections = connections.borrow_mut();
                if let Some(conn) = connections.get(&self.id) {
                    return Ok(conn.clone());
                }
                let conn = ConnectionManager::new_lazy_with_config(
                    self.client.clone(),
                    self.config.clone(),
                )?;
                connections.insert(self.id, conn.clone());
                Ok(conn)
            })
            .map_err(unavailable)
    }
}

pub(super) async fn ping(store: &RedisStore) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}
