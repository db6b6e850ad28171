//! Decoded signing keys kept in memory so that verifying a token needs no store read.
//!
//! Policy: an entry is used for at most [`KEY_CACHE_TTL`] after it was read from the store,
//! then read again. Deleting a key through this server removes its entry at once; a key deleted
//! by another server sharing the store stops working here within the TTL. Only keys that exist
//! are cached, so the cache holds at most as many entries as the store has keys; a token naming
//! an unknown key costs one store read each time.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use jsonwebtoken::DecodingKey;

use crate::ids::KeyId;
use crate::store::KeyRecord;

/// How long a cached key is trusted before it is read again. Not configurable: it is the bound
/// on how long a key deleted elsewhere keeps working, and a few seconds is both prompt and
/// cheap (one store read per key per period).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// What verification needs of a key.
pub struct CachedKey {
    pub scopes: BTreeSet<String>,
    pub hmac: DecodingKey,
    loaded_at: Instant,
}

impl CachedKey {
    /// `None` when the record's secret is empty (a corrupt record; such a key verifies nothing).
    pub fn from_record(record: &KeyRecord) -> Option<Self> {
        let hmac = DecodingKey::from_secret(record.secret.as_bytes()).ok()?;
        Some(Self {
            scopes: record.scopes.iter().cloned().collect(),
            hmac,
            loaded_at: Instant::now(),
        })
    }
}

/// The cache. A removal bumps a generation counter; a load that started before the removal
/// does not insert its (possibly deleted) key afterwards.
#[derive(Default)]
pub struct KeyCache {
    entries: DashMap<KeyId, Arc<CachedKey>>,
    generation: AtomicU64,
}

impl KeyCache {
    /// The cached key if it is fresh.
    pub fn get(&self, id: &KeyId) -> Option<Arc<CachedKey>> {
        let entry = self.entries.get(id)?;
        (entry.loaded_at.elapsed() < KEY_CACHE_TTL).then(|| Arc::clone(entry.value()))
    }

    /// Call before reading a key from the store; pass the value to [`KeyCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `key` unless a removal happened since `generation` was taken. The check is
    /// repeated after inserting, so a removal racing with the insert always wins.
    pub fn insert(&self, id: KeyId, key: Arc<CachedKey>, generation: u64) {
        if self.generation() != generation {
            return;
        }
        self.entries.insert(id.clone(), key);
        if self.generation() != generation {
            self.entries.remove(&id);
        }
    }

    /// Forgets `id` at once.
    pub fn remove(&self, id: &KeyId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(id);
    }

    /// Forgets a key that is no longer in the store.
    pub fn forget_missing(&self, id: &KeyId) {
        self.entries.remove(id);
    }
}
