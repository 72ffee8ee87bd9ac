//! Name resolution for the gateway's upstream client, with the upstream
//! policy applied to what a name resolves to.
//!
//! The admin API checks an upstream URL as written; a DNS name in it can
//! still resolve to a link-local address (a name an attacker controls, or
//! one that changes after the check) or to the broker itself. Each address a
//! name resolves to is checked when the gateway connects, and the refused
//! ones are never dialled. IP literals are not resolved; the gateway checks
//! them with the URL before each request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use actix_tls::connect::Resolve;
use futures_util::future::LocalBoxFuture;

use crate::domain::upstream::UpstreamPolicy;

pub struct GuardedResolver {
    policy: Arc<UpstreamPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<UpstreamPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        let target = (host.to_owned(), port);
        Box::pin(async move {
            // The system resolver blocks, as the default resolver's does.
            let found: Vec<SocketAddr> = actix_web::rt::task::spawn_blocking(move || {
                target.to_socket_addrs().map(Iterator::collect)
            })
            .await??;
            let (refused, allowed): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|addr| self.policy.refuses_address(*addr));
            if !refused.is_empty() {
                tracing::warn!(
                    host,
                    ?refused,
                    "upstream name resolves to link-local or own addresses; not connecting to them"
                );
            }
            if allowed.is_empty() && !refused.is_empty() {
                return Err(std::io::Error::other(
                    "every address of the upstream is refused by upstreams.allow_private",
                )
                .into());
            }
            Ok(allowed)
        })
    }
}
