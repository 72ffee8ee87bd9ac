//! Writes that must survive a failover: instances, credentials (secrets,
//! domain keys, experience tokens), experiences (in the instance record),
//! revocations and the signing-key ring.
//!
//! On one node they run as they are. On a cluster each is sent in one
//! pipeline on one connection together with `WAIT 1`, which answers how
//! many replicas have every write that connection made: so the count covers
//! this write, on the node that took it. A `WAIT` sent on its own could land
//! elsewhere (the client falls back to another node while its slot map is
//! stale, as during a failover) and count nothing of this write. The write
//! is acknowledged only when a replica has it; after [`replica_wait`] it
//! answers 503 instead.
//!
//! A pipeline that reached a node not owning the slot gets `MOVED` (or
//! `ASK`) back for its write, which did not happen; one plain command on
//! the key then teaches the client the slot's owner, and the pipeline is
//! sent once more.

use redis::aio::ConnectionLike;
use redis::{Cmd, Value};

use super::cluster::replica_wait;
use super::connection::Conn;
use super::{script_failed, unavailable, RedisStore};
use crate::store::StoreError;

impl RedisStore {
    /// Runs `commands` (in one `MULTI`/`EXEC` when `atomic`) as a write that
    /// must survive a failover; `key` names the slot they all touch. Returns
    /// each command's reply. A command that failed fails the whole write
    /// (a script's `CORRUPT` error as corrupt data).
    pub(super) async fn write_durably(
        &self,
        key: &str,
        commands: Vec<Cmd>,
        atomic: bool,
    ) -> Result<Vec<Value>, StoreError> {
        let mut conn = self.conn()?;
        if !matches!(conn, Conn::Cluster(_)) {
            let mut pipe = redis::pipe();
            if atomic {
                pipe.atomic();
            }
            for command in commands {
                pipe.add_command(command);
            }
            let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(script_failed)?;
            return replies.into_iter().map(checked).collect();
        }
        let wait = replica_wait(self.timeout);
        let count = commands.len();
        let mut pipe = redis::pipe();
        if atomic {
            pipe.cmd("MULTI");
        }
        for command in commands {
            pipe.add_command(command);
        }
        if atomic {
            pipe.cmd("EXEC");
        }
        pipe.cmd("WAIT")
            .arg(1)
            .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        let mut redirected = false;
        loop {
            let mut replies = conn
                .req_packed_commands(&pipe, 0, pipe.len())
                .await
                .map_err(unavailable)?;
            if !redirected && replies.iter().any(is_redirect) {
                redirected = true;
                let _: Value = redis::cmd("EXISTS")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                continue;
            }
            let replicas = replies.pop();
            // What the commands answered: EXEC's array, or the replies
            // themselves (after MULTI's OK and the QUEUED of each).
            let answers = if atomic {
                match replies.pop().map(Value::extract_error) {
                    Some(Ok(Value::Array(answers))) => answers,
                    Some(Err(e)) => return Err(script_failed(first_error(&replies).unwrap_or(e))),
                    _ => return Err(unavailable_text("the transaction was aborted")),
                }
            } else {
                replies
            };
            let answers = answers
                .into_iter()
                .map(checked)
                .collect::<Result<Vec<_>, _>>()?;
            if answers.len() != count {
                return Err(unavailable_text(
                    "a write answered fewer replies than commands",
                ));
            }
            let replicas: i64 = match replicas.map(Value::extract_error) {
                Some(Ok(Value::Int(n))) => n,
                Some(Err(e)) => return Err(unavailable(e)),
                _ => 0,
            };
            if replicas < 1 {
                return Err(StoreError::NotReplicated {
                    waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                });
            }
            return Ok(answers);
        }
    }
}

fn checked(reply: Value) -> Result<Value, StoreError> {
    reply.extract_error().map_err(script_failed)
}

fn first_error(replies: &[Value]) -> Option<redis::RedisError> {
    replies
        .iter()
        .find_map(|reply| reply.clone().extract_error().err())
}

fn is_redirect(reply: &Value) -> bool {
    match reply {
        Value::ServerError(e) => matches!(e.code(), "MOVED" | "ASK" | "TRYAGAIN"),
        _ => false,
    }
}

fn unavailable_text(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned())
}
