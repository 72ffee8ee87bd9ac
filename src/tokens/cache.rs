//! The verified-token cache of [`TokenService`](super::TokenService).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Claims;

/// Tokens whose signature and claims already verified, by SHA-256 of the whole
/// token (so a changed byte anywhere misses), holding their claims. Only the
/// signature work is saved: the time checks run on every use, and an entry is
/// useless once its token has expired. Bounded: when full, expired entries go;
/// if that is not enough, everything goes.
pub(super) struct VerifiedCache {
    entries: RwLock<HashMap<[u8; 16], Arc<Claims>>>,
    capacity: usize,
}

pub const VERIFIED_CACHE_CAPACITY: usize = 65_536;

impl VerifiedCache {
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// Forgets every token: the keys they were verified with may be gone.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn key(token: &str) -> [u8; 16] {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest.as_ref()[..16]);
        key
    }

    pub fn get(&self, key: &[u8; 16]) -> Option<Arc<Claims>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub fn insert(&self, key: [u8; 16], claims: Arc<Claims>, now: i64, leeway: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.exp + leeway > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, claims);
    }
}
