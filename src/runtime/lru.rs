//! A small least-recently-used map for the runtime's bounded caches.
//!
//! Lookups and inserts are O(1); evicting scans all entries, which is fine for the few dozen
//! to few hundred entries these caches hold.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Holds at most `capacity` entries; inserting one more evicts the least recently used.
pub struct Lru<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// A map that keeps at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The entry for `key`, marked as just used.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.tick();
        let (used, value) = self.entries.get_mut(key)?;
        *used = now;
        Some(value)
    }

    /// Inserts or replaces `key`; returns what was evicted to make room, if anything.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        let now = self.tick();
        let mut evicted = None;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                evicted = self.entries.remove(&oldest).map(|(_, v)| (oldest, v));
            }
        }
        self.entries.insert(key, (now, value));
        evicted
    }

    /// The entry for `key`, inserting `make()` first when absent.
    pub fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> &mut V {
        if !self.entries.contains_key(key) {
            self.insert(key.clone(), make());
        }
        self.get_mut(key).expect("the entry was just inserted")
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key).map(|(_, v)| v)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get_mut("a"), Some(&mut 1));
        assert_eq!(lru.insert("c", 3), Some(("b", 2)));
        assert!(lru.get_mut("b").is_none());
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn replacing_a_key_evicts_nothing() {
        let mut lru = Lru::new(1);
        lru.insert("a", 1);
        assert_eq!(lru.insert("a", 2), None);
        assert_eq!(lru.get_mut("a"), Some(&mut 2));
    }
}
