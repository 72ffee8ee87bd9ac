//! Keyspace notifications for the revocation feed.
//!
//! Product requests answer from the local view (`app/hot_path.rs`), so the
//! view must hear of every write to what it holds, including writes the
//! broker did not make (a restore, a hand edit, another program): Redis
//! itself announces each write to a revocation key, an instance's epoch or
//! a credential hash on its keyspace channel, atomically with the write, and
//! the feed's connection listens to those channels for its prefix. The key
//! names carry the instance id as their hash tag, which is what the view
//! needs.
//!
//! Turning the notifications on needs `CONFIG SET`; flags already set are
//! kept. Where the server refuses (a managed Redis may), the feed still runs
//! but says so, and product requests keep reading the store every time.

use super::{unavailable, RedisStore};
use crate::store::StoreError;

/// Key-space events (`K`) of string (`$`), hash (`h`) and generic (`g`:
/// `DEL`, `EXPIRE`, `RENAME`…) commands.
const FLAGS: [char; 4] = ['K', '$', 'h', 'g'];

/// Makes sure the server behind `conn` publishes the events the view
/// needs; `false` when it cannot be told to.
pub(super) async fn enable(
    conn: &mut (impl redis::aio::ConnectionLike + Send),
) -> Result<bool, StoreError> {
    let current: Result<(String, String), _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(conn)
        .await;
    let Ok((_, current)) = current else {
        return Ok(false);
    };
    // `A` stands for every class but key-miss and new-key events.
    let has = |c: char| current.contains(c) || (c != 'K' && current.contains('A'));
    if FLAGS.iter().all(|c| has(*c)) {
        return Ok(true);
    }
    let mut wanted = current.clone();
    wanted.extend(FLAGS.iter().filter(|c| !has(**c)));
    let set: Result<String, _> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(wanted)
        .query_async(conn)
        .await;
    match set {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == redis::ErrorKind::Io => Err(unavailable(e)),
        Err(_) => Ok(false),
    }
}

/// The keyspace channels of what the view holds: revocation keys, epochs
/// and credential hashes of every instance under the prefix.
pub(super) fn patterns(store: &RedisStore) -> Vec<String> {
    let p = store.prefix();
    ["rev:*", "epoch", "cred:*", "instance"]
        .iter()
        .map(|tail| format!("__keyspace@*__:{p}:{{*}}:{tail}"))
        .collect()
}

/// The instance a keyspace channel is about: its key's hash tag.
pub(super) fn instance_of(channel: &str) -> Option<&str> {
    let key = channel.strip_prefix("__keyspace@")?;
    let start = key.find('{')? + 1;
    let len = key[start..].find('}')?;
    Some(&key[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_is_the_hash_tag_of_the_key() {
        assert_eq!(
            instance_of("__keyspace@0__:kb:{ins_1}:rev:jti:abc"),
            Some("ins_1")
        );
        assert_eq!(
            instance_of("__keyspace@0__:kb:{ins_1}:epoch"),
            Some("ins_1")
        );
        assert_eq!(instance_of("kb:revocations"), None);
        assert_eq!(instance_of("__keyspace@0__:kb:no-tag"), None);
    }
}
