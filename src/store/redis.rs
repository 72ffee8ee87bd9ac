//! Redis backend: the system of record in production, shared by every broker
//! process. Run Redis with AOF persistence (see `docker-compose.yml`).
//!
//! Key layout (`P` is the configured prefix, `kb` by default). Per-instance keys
//! carry the instance id as a hash tag so that multi-key scripts stay
//! cluster-safe:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:instances` | zset | instance ids by creation time |
//! | `P:apikey:<api key>` | string | instance id |
//! | `P:credhash:<hmac>` | string | `<instance id>/<credential id>` |
//! | `P:{<instance>}:instance` | string | instance JSON |
//! | `P:{<instance>}:epoch` | string | bumped by every change of the instance JSON |
//! | `P:{<instance>}:creds` | zset | credential ids by creation time |
//! | `P:{<instance>}:cred:<id>` | hash | `record` (JSON) and the mutable fields |
//! | `P:{<instance>}:rev:jti:<jti>` | string, TTL | revoked token |
//! | `P:{<instance>}:rev:sid:<sid>` | string, TTL | revoked session |
//! | `P:{<instance>}:rev:cred:<id>` | string, TTL | unix second: tokens of the credential issued by then are dead |
//! | `P:{<instance>}:rev:all` | string, TTL | unix second: tokens of the instance issued by then are dead |
//! | `P:{<instance>}:succ:<jti>` | string, TTL | id and times of the token that succeeded `jti` on refresh |
//! | `P:{<instance>}:rl:<what>:<window>` | string, TTL | a rate-limit counter, dies with its window |
//! | `P:{global}:rl:<what>:<window>` | string, TTL | a brute-force counter (per IP, per API key) |
//! | `P:{<instance>}:usage` | hash | `<credential>|<counter>` → count |
//! | `P:{<instance>}:audit` | list | audit entries (JSON), newest first, trimmed |
//!
//! Instance, credential, usage and audit keys are owned: they live exactly as
//! long as their instance or credential and are deleted with it. Field updates
//! go through a script that refuses to recreate a deleted credential's hash.
//! Every other key carries a TTL.
//!
//! Every revocation is also announced on the channel `P:revocations` (payload:
//! the instance id), by the same script that records it, for the local views
//! of the other processes (`http/revocation_view.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, IntoConnectionInfo, Script};

use super::{
    Caller, GatewayCheck, GatewayState, Revocation, RevocationFeed, Revocations, Store, StoreError,
    Usage, Window,
};
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::instance::{CredentialRecord, Instance};

/// How often the revocation feed's connection must prove it is alive; a view
/// that has not heard from it for [`crate::http::revocation_view::STALE_AFTER`]
/// is not trusted.
pub const FEED_PING_INTERVAL: Duration = Duration::from_millis(250);

const FIELD_RECORD: &str = "record";
const FIELD_REVOKED: &str = "revoked_at";
const FIELD_EXPIRES: &str = "expires_at";
const FIELD_DOMAINS: &str = "domains";
const FIELD_LAST_USED: &str = "last_used_at";

/// Updates one field of an existing credential hash. Modes: `set` always,
/// `setnx` only when absent, `min`/`max` keep the smaller/larger number.
const UPDATE_FIELD: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[3]
if mode == 'set' or not cur
   or (mode == 'min' and tonumber(ARGV[2]) < tonumber(cur))
   or (mode == 'max' and tonumber(ARGV[2]) > tonumber(cur)) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"#;

/// Sets a revocation time keeping the earlier (`min`) or later (`max`) one, and
/// never shortens the key's TTL.
const REVOKE_AT: &str = r#"
local cur = redis.call('GET', KEYS[1])
local new = tonumber(ARGV[1])
if cur then
  cur = tonumber(cur)
  if (ARGV[3] == 'min' and cur < new) or (ARGV[3] == 'max' and cur > new) then new = cur end
end
local ttl = redis.call('TTL', KEYS[1])
local want = tonumber(ARGV[2])
if ttl > want then want = ttl end
redis.call('SET', KEYS[1], new, 'EX', want)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

/// Counts a hit in each window, stopping after the first one over its limit.
/// ARGV holds (limit, ttl_ms) pairs in the order of KEYS.
const HIT: &str = r#"
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
  out[i] = n
  if n > tonumber(ARGV[2 * i - 1]) then return out end
end
return out
"#;

/// Adds usage counts; `last_used_at` keeps the maximum. Does nothing when the
/// instance is gone, so a late flush cannot recreate its keys.
const ADD_USAGE: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  local field = ARGV[i]
  local amount = tonumber(ARGV[i + 1])
  if string.sub(field, -13) == '|last_used_at' then
    local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if amount > cur then redis.call('HSET', KEYS[1], field, amount) end
  else
    redis.call('HINCRBY', KEYS[1], field, amount)
  end
end
return 1
"#;

/// Appends an audit entry unless the instance is gone, and trims the list.
const APPEND_AUDIT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
"#;

/// Replaces an existing instance record and bumps its epoch, atomically; never
/// recreates an instance deleted meanwhile.
const UPDATE_INSTANCE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'XX') then
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"#;

/// The gateway's one call per product request: the instance epoch, the caller's
/// revocation state, then the rate-limit windows (counted in order, stopping
/// after the first over its limit). ARGV[1] is `token` (KEYS[2..5] are the jti,
/// sid, credential and instance revocation keys) or `xt` (KEYS[2] is the
/// credential hash); ARGV[2k], ARGV[2k+1] are the limit and TTL (ms) of window k.
const GATEWAY_CHECK: &str = r#"
local out = { tonumber(redis.call('GET', KEYS[1]) or '0') }
local first
if ARGV[1] == 'token' then
  local v = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  for i = 1, 4 do out[#out + 1] = v[i] and tonumber(v[i]) or -1 end
  first = 6
else
  local v = redis.call('HMGET', KEYS[2], 'record', 'revoked_at', 'expires_at')
  out[#out + 1] = v[1] and 1 or 0
  out[#out + 1] = v[2] and tonumber(v[2]) or -1
  out[#out + 1] = v[3] and tonumber(v[3]) or -1
  first = 3
end
local w = 0
for i = first, #KEYS do
  w = w + 1
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * w + 1]) end
  out[#out + 1] = n
  if n > tonumber(ARGV[2 * w]) then break end
end
return out
"#;

/// Each thread talks to Redis over its own multiplexed connection, whose
/// driver task runs on that thread's runtime. One shared connection would put
/// every command of every actix worker through a hop to the thread that
/// created it and back: measured, that cross-thread wake-up cost more CPU than
/// the rest of a gateway request.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    config: ConnectionManagerConfig,
    timeout: Duration,
    /// Tells apart stores of one process (tests run many) in the thread-local map.
    id: u64,
    prefix: String,
    update_field: Script,
    revoke_at: Script,
    hit: Script,
    add_usage: Script,
    append_audit: Script,
    update_instance: Script,
    gateway_check: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    let ms: i64 = raw.parse().map_err(corrupt)?;
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("timestamp out of range"))
}

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
            update_field: Script::new(UPDATE_FIELD),
            revoke_at: Script::new(REVOKE_AT),
            hit: Script::new(HIT),
            add_usage: Script::new(ADD_USAGE),
            append_audit: Script::new(APPEND_AUDIT),
            update_instance: Script::new(UPDATE_INSTANCE),
            gateway_check: Script::new(GATEWAY_CHECK),
        };
        tokio::time::timeout(timeout * 2, store.ping())
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to Redis".into()))??;
        Ok(store)
    }

    /// This thread's connection, made on first use (it then reconnects by
    /// itself when Redis comes back).
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
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

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where every revocation is announced, with its instance id as payload.
    fn revocations_channel(&self) -> String {
        format!("{}:revocations", self.prefix)
    }

    fn instances_key(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    fn api_key_key(&self, api_key: &str) -> String {
        format!("{}:apikey:{api_key}", self.prefix)
    }

    fn hash_key(&self, hash: &CredentialHash) -> String {
        format!("{}:credhash:{}", self.prefix, hash.as_str())
    }

    fn instance_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:instance", self.prefix)
    }

    fn epoch_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:epoch", self.prefix)
    }

    fn creds_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:creds", self.prefix)
    }

    fn cred_key(&self, instance_id: &str, id: &str) -> String {
        format!("{}:{{{instance_id}}}:cred:{id}", self.prefix)
    }

    fn revocation_key(&self, instance_id: &str, revocation: &Revocation<'_>) -> String {
        let p = &self.prefix;
        match revocation {
            Revocation::Token { jti } => format!("{p}:{{{instance_id}}}:rev:jti:{jti}"),
            Revocation::Session { sid } => format!("{p}:{{{instance_id}}}:rev:sid:{sid}"),
            Revocation::Credential { id, .. } => format!("{p}:{{{instance_id}}}:rev:cred:{id}"),
            Revocation::Instance { .. } => format!("{p}:{{{instance_id}}}:rev:all"),
        }
    }

    fn counter_key(&self, scope: Option<&str>, suffix: &str) -> String {
        match scope {
            Some(instance_id) => format!("{}:{{{instance_id}}}:rl:{suffix}", self.prefix),
            // One hash tag for every counter not about one instance, so that a
            // script counting several of them stays in one cluster slot.
            None => format!("{}:{{global}}:rl:{suffix}", self.prefix),
        }
    }

    fn usage_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:usage", self.prefix)
    }

    fn audit_key(&self, instance_id: &str) -> String {
        format!("{}:{{{instance_id}}}:audit", self.prefix)
    }

    fn successor_key(&self, instance_id: &str, jti: &str) -> String {
        format!("{}:{{{instance_id}}}:succ:{jti}", self.prefix)
    }

    fn add_credential_to(
        &self,
        pipe: &mut redis::Pipeline,
        credential: &CredentialRecord,
    ) -> Result<(), StoreError> {
        let record = serde_json::to_string(credential).map_err(corrupt)?;
        pipe.hset(
            self.cred_key(&credential.instance_id, &credential.id),
            FIELD_RECORD,
            record,
        )
        .ignore()
        .zadd(
            self.creds_key(&credential.instance_id),
            &credential.id,
            millis(credential.created_at),
        )
        .ignore()
        .set(
            self.hash_key(&credential.hash),
            format!("{}/{}", credential.instance_id, credential.id),
        )
        .ignore();
        Ok(())
    }

    fn parse_credential(
        fields: HashMap<String, String>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let Some(record) = fields.get(FIELD_RECORD) else {
            return Ok(None);
        };
        let mut credential: CredentialRecord = serde_json::from_str(record).map_err(corrupt)?;
        if let Some(raw) = fields.get(FIELD_REVOKED) {
            credential.revoked_at = Some(from_millis(raw)?);
        }
        if let Some(raw) = fields.get(FIELD_EXPIRES) {
            credential.expires_at = Some(from_millis(raw)?);
        }
        if let Some(raw) = fields.get(FIELD_LAST_USED) {
            credential.last_used_at = Some(from_millis(raw)?);
        }
        if let Some(raw) = fields.get(FIELD_DOMAINS) {
            credential.domains = serde_json::from_str(raw).map_err(corrupt)?;
        }
        Ok(Some(credential))
    }

    async fn update_field(
        &self,
        instance_id: &str,
        id: &str,
        field: &str,
        value: String,
        mode: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let mut conn = self.conn()?;
        let existed: i64 = self
            .update_field
            .key(self.cred_key(instance_id, id))
            .arg(field)
            .arg(value)
            .arg(mode)
            .arg(self.revocations_channel())
            .arg(instance_id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if existed == 0 {
            return Ok(None);
        }
        self.get_credential(instance_id, id).await
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn has_revocation_feed(&self) -> bool {
        true
    }

    /// A dedicated pub/sub connection, pinged every [`FEED_PING_INTERVAL`]:
    /// a subscription that dies silently (no reset, no EOF) is noticed by its
    /// missing answer, not trusted until the TCP keepalive gives up.
    async fn follow_revocations(&self, feed: &dyn RevocationFeed) -> Result<(), StoreError> {
        let lost = |why: &str| StoreError::Unavailable(format!("revocation feed: {why}"));
        let pubsub = tokio::time::timeout(self.timeout, self.client.get_async_pubsub())
            .await
            .map_err(|_| lost("timed out connecting"))?
            .map_err(unavailable)?;
        let (mut sink, mut stream) = pubsub.split();
        tokio::time::timeout(self.timeout, sink.subscribe(self.revocations_channel()))
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
                    feed.changed(&instance_id);
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

    async fn insert_instance(
        &self,
        instance: &Instance,
        first_secret: &CredentialRecord,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(instance).map_err(corrupt)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(self.instance_key(&instance.id), json)
            .ignore()
            .set(self.api_key_key(&instance.api_key), &instance.id)
            .ignore()
            .set(self.epoch_key(&instance.id), 1)
            .ignore()
            .zadd(
                self.instances_key(),
                &instance.id,
                millis(instance.created_at),
            )
            .ignore();
        self.add_credential_to(&mut pipe, first_secret)?;
        let mut conn = self.conn()?;
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        let mut conn = self.conn()?;
        let raw: Option<String> = conn.get(self.instance_key(id)).await.map_err(unavailable)?;
        raw.map(|json| serde_json::from_str(&json).map_err(corrupt))
            .transpose()
    }

    async fn epoch(&self, id: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let epoch: Option<u64> = conn.get(self.epoch_key(id)).await.map_err(unavailable)?;
        Ok(epoch.unwrap_or(0))
    }

    async fn instance_with_epoch(&self, id: &str) -> Result<Option<(Instance, u64)>, StoreError> {
        let mut conn = self.conn()?;
        let (raw, epoch): (Option<String>, Option<u64>) = redis::cmd("MGET")
            .arg(self.instance_key(id))
            .arg(self.epoch_key(id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match raw {
            Some(json) => {
                let instance = serde_json::from_str(&json).map_err(corrupt)?;
                Ok(Some((instance, epoch.unwrap_or(0))))
            }
            None => Ok(None),
        }
    }

    async fn instance_id_by_api_key(&self, api_key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        conn.get(self.api_key_key(api_key))
            .await
            .map_err(unavailable)
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let mut conn = self.conn()?;
        let ids: Vec<String> = conn
            .zrange(self.instances_key(), 0, -1)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.instance_key(id)).collect();
        let raws: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        raws.into_iter()
            .flatten()
            .map(|json| serde_json::from_str(&json).map_err(corrupt))
            .collect()
    }

    async fn update_instance(&self, instance: &Instance) -> Result<bool, StoreError> {
        let json = serde_json::to_string(instance).map_err(corrupt)?;
        let mut conn = self.conn()?;
        let done: i64 = self
            .update_instance
            .key(self.instance_key(&instance.id))
            .key(self.epoch_key(&instance.id))
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }

    async fn delete_instance(&self, id: &str) -> Result<bool, StoreError> {
        let Some(instance) = self.get_instance(id).await? else {
            return Ok(false);
        };
        let mut conn = self.conn()?;
        let cred_ids: Vec<String> = conn
            .zrange(self.creds_key(id), 0, -1)
            .await
            .map_err(unavailable)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.instance_key(id))
            .ignore()
            .del(self.epoch_key(id))
            .ignore()
            .del(self.api_key_key(&instance.api_key))
            .ignore()
            .zrem(self.instances_key(), id)
            .ignore()
            .del(self.creds_key(id))
            .ignore()
            .del(self.usage_key(id))
            .ignore()
            .del(self.audit_key(id))
            .ignore();
        for cred_id in &cred_ids {
            if let Some(credential) = self.get_credential(id, cred_id).await? {
                pipe.del(self.hash_key(&credential.hash)).ignore();
            }
            pipe.del(self.cred_key(id, cred_id)).ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    async fn insert_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.add_credential_to(&mut pipe, credential)?;
        let mut conn = self.conn()?;
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn get_credential(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let mut conn = self.conn()?;
        let fields: HashMap<String, String> = conn
            .hgetall(self.cred_key(instance_id, id))
            .await
            .map_err(unavailable)?;
        Self::parse_credential(fields)
    }

    /// One round trip: both keys carry the instance's hash tag.
    async fn credential_with_epoch(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<(Option<CredentialRecord>, u64), StoreError> {
        let mut conn = self.conn()?;
        let (fields, epoch): (HashMap<String, String>, Option<u64>) = redis::pipe()
            .hgetall(self.cred_key(instance_id, id))
            .get(self.epoch_key(instance_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((Self::parse_credential(fields)?, epoch.unwrap_or(0)))
    }

    async fn list_credentials(
        &self,
        instance_id: &str,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let mut conn = self.conn()?;
        let ids: Vec<String> = conn
            .zrange(self.creds_key(instance_id), 0, -1)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.cred_key(instance_id, id));
        }
        let all: Vec<HashMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        let mut found = Vec::new();
        for fields in all {
            if let Some(credential) = Self::parse_credential(fields)? {
                if credential.kind == kind {
                    found.push(credential);
                }
            }
        }
        Ok(found)
    }

    async fn credential_by_hash(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let mut conn = self.conn()?;
        let location: Option<String> = conn.get(self.hash_key(hash)).await.map_err(unavailable)?;
        let Some(location) = location else {
            return Ok(None);
        };
        let (instance_id, id) = location
            .split_once('/')
            .ok_or_else(|| corrupt("credential index entry without a slash"))?;
        self.get_credential(instance_id, id).await
    }

    async fn revoke_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        self.update_field(
            instance_id,
            id,
            FIELD_REVOKED,
            millis(at).to_string(),
            "setnx",
        )
        .await
    }

    async fn expire_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        self.update_field(
            instance_id,
            id,
            FIELD_EXPIRES,
            millis(at).to_string(),
            "min",
        )
        .await
    }

    async fn set_domains(
        &self,
        instance_id: &str,
        id: &str,
        domains: &[String],
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let json = serde_json::to_string(domains).map_err(corrupt)?;
        self.update_field(instance_id, id, FIELD_DOMAINS, json, "set")
            .await
    }

    async fn touch_credential(
        &self,
        instance_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let _: i64 = self
            .update_field
            .key(self.cred_key(instance_id, id))
            .arg(FIELD_LAST_USED)
            .arg(millis(at).to_string())
            .arg("max")
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke(
        &self,
        instance_id: &str,
        revocation: Revocation<'_>,
        ttl_seconds: i64,
    ) -> Result<(), StoreError> {
        let key = self.revocation_key(instance_id, &revocation);
        let ttl = ttl_seconds.max(1);
        let mut conn = self.conn()?;
        let (value, mode) = match revocation {
            Revocation::Token { .. } | Revocation::Session { .. } => (1, "max"),
            Revocation::Credential { before, .. } => (before, "min"),
            Revocation::Instance { before } => (before, "max"),
        };
        let _: i64 = self
            .revoke_at
            .key(key)
            .arg(value)
            .arg(ttl)
            .arg(mode)
            .arg(self.revocations_channel())
            .arg(instance_id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revocations(
        &self,
        instance_id: &str,
        jti: &str,
        sid: &str,
        credential_id: &str,
    ) -> Result<Revocations, StoreError> {
        let keys = [
            self.revocation_key(instance_id, &Revocation::Token { jti }),
            self.revocation_key(instance_id, &Revocation::Session { sid }),
            self.revocation_key(
                instance_id,
                &Revocation::Credential {
                    id: credential_id,
                    before: 0,
                },
            ),
            self.revocation_key(instance_id, &Revocation::Instance { before: 0 }),
        ];
        let mut conn = self.conn()?;
        let values: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let at = |i: usize| values.get(i).copied().flatten();
        Ok(Revocations {
            jti: at(0).is_some(),
            sid: at(1).is_some(),
            credential_before: at(2),
            instance_before: at(3),
        })
    }

    async fn remember_successor(
        &self,
        instance_id: &str,
        jti: &str,
        record: &str,
        ttl_seconds: i64,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        // NX + GET: atomically store ours unless another refresh won the race.
        let previous: Option<String> = redis::cmd("SET")
            .arg(self.successor_key(instance_id, jti))
            .arg(record)
            .arg("NX")
            .arg("GET")
            .arg("EX")
            .arg(ttl_seconds.max(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(previous.unwrap_or_else(|| record.to_owned()))
    }

    async fn successor(&self, instance_id: &str, jti: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        conn.get(self.successor_key(instance_id, jti))
            .await
            .map_err(unavailable)
    }

    async fn hit(&self, scope: Option<&str>, windows: &[Window]) -> Result<Vec<u64>, StoreError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.hit.prepare_invoke();
        for window in windows {
            invocation
                .key(self.counter_key(scope, &window.suffix))
                .arg(window.limit)
                .arg(window.ttl_ms.max(1));
        }
        let mut conn = self.conn()?;
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn peek(&self, scope: Option<&str>, suffixes: &[String]) -> Result<Vec<u64>, StoreError> {
        if suffixes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = suffixes
            .iter()
            .map(|s| self.counter_key(scope, s))
            .collect();
        let mut conn = self.conn()?;
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn add_usage(
        &self,
        instance_id: &str,
        increments: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        if increments.is_empty() {
            return Ok(());
        }
        let mut invocation = self.add_usage.prepare_invoke();
        invocation
            .key(self.usage_key(instance_id))
            .key(self.instance_key(instance_id));
        for (credential, counter, amount) in increments {
            invocation
                .arg(format!("{credential}|{counter}"))
                .arg(*amount);
        }
        let mut conn = self.conn()?;
        let _: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn usage(&self, instance_id: &str) -> Result<Usage, StoreError> {
        let mut conn = self.conn()?;
        let fields: HashMap<String, i64> = conn
            .hgetall(self.usage_key(instance_id))
            .await
            .map_err(unavailable)?;
        let mut usage = Usage::new();
        for (field, value) in fields {
            if let Some((credential, counter)) = field.split_once('|') {
                usage
                    .entry(credential.to_owned())
                    .or_default()
                    .insert(counter.to_owned(), value);
            }
        }
        Ok(usage)
    }

    async fn append_audit(
        &self,
        instance_id: &str,
        entry: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let _: i64 = self
            .append_audit
            .key(self.audit_key(instance_id))
            .key(self.instance_key(instance_id))
            .arg(entry)
            .arg(keep.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn audit(
        &self,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StoreError> {
        if limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let key = self.audit_key(instance_id);
        let mut conn = self.conn()?;
        let (entries, total): (Vec<String>, usize) = redis::pipe()
            .lrange(&key, offset as isize, (offset + limit - 1) as isize)
            .llen(&key)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((entries, total))
    }

    async fn gateway_check(&self, check: GatewayCheck<'_>) -> Result<GatewayState, StoreError> {
        let id = check.instance_id;
        let mut invocation = self.gateway_check.prepare_invoke();
        invocation.key(self.epoch_key(id));
        match check.caller {
            Caller::Token {
                jti,
                sid,
                credential_id,
            } => {
                invocation
                    .key(self.revocation_key(id, &Revocation::Token { jti }))
                    .key(self.revocation_key(id, &Revocation::Session { sid }))
                    .key(self.revocation_key(
                        id,
                        &Revocation::Credential {
                            id: credential_id,
                            before: 0,
                        },
                    ))
                    .key(self.revocation_key(id, &Revocation::Instance { before: 0 }))
                    .arg("token");
            }
            Caller::Experience { credential_id } => {
                invocation.key(self.cred_key(id, credential_id)).arg("xt");
            }
        }
        for window in check.windows {
            invocation
                .key(self.counter_key(Some(id), &window.suffix))
                .arg(window.limit)
                .arg(window.ttl_ms.max(1));
        }
        let mut conn = self.conn()?;
        let out: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let at = |i: usize| out.get(i).copied().unwrap_or(-1);
        let known = |v: i64| (v >= 0).then_some(v);
        let mut state = GatewayState {
            epoch: u64::try_from(at(0)).unwrap_or(0),
            ..GatewayState::default()
        };
        let first_count = match check.caller {
            Caller::Token { .. } => {
                state.revocations = Revocations {
                    jti: at(1) >= 0,
                    sid: at(2) >= 0,
                    credential_before: known(at(3)),
                    instance_before: known(at(4)),
                };
                5
            }
            Caller::Experience { .. } => {
                state.credential_exists = at(1) == 1;
                let dead = [known(at(2)), known(at(3))].into_iter().flatten().min();
                state.credential_dead_at =
                    dead.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
                4
            }
        };
        state.counts = out
            .iter()
            .skip(first_count)
            .map(|n| u64::try_from(*n).unwrap_or(0))
            .collect();
        Ok(state)
    }
}
