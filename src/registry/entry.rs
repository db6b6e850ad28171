//! One map entry per hot instance, and how a request gets hold of it.
//!
//! Invariant: a request that holds an entry's mutex and finds it not [`Slot::Retired`] holds
//! the only live entry for that key, so at most one write per instance runs at a time on this
//! node. Removing an entry from the map always marks it retired first, under its mutex.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry as MapEntry;
use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

use super::{Inner, RegistryError};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::metrics::{events as metrics, LiveGauge};
use crate::store::InstanceRecord;

/// What an entry knows about its instance.
pub(super) enum Slot {
    /// Just inserted; the store has not been asked yet.
    Cold,
    /// The instance as last committed.
    Loaded(Arc<InstanceRecord>),
    /// Removed from the map (evicted, deleted, or found absent); holders must look again.
    Retired,
}

pub(super) struct Entry {
    slot: Arc<tokio::sync::Mutex<Slot>>,
    /// A copy of the loaded record that readers take without waiting behind a write.
    published: Mutex<Option<Arc<InstanceRecord>>>,
    last_used_ms: AtomicI64,
    /// Counts this entry in the hot-instance gauge for as long as it lives.
    _hot: LiveGauge,
}

/// Exclusive access to one live entry.
pub(super) struct Held {
    pub entry: Arc<Entry>,
    pub slot: OwnedMutexGuard<Slot>,
}

impl Entry {
    fn new() -> Self {
        Self {
            slot: Arc::new(tokio::sync::Mutex::new(Slot::Cold)),
            published: Mutex::new(None),
            last_used_ms: AtomicI64::new(now_ms()),
            _hot: metrics::hot_instance(),
        }
    }

    pub fn last_used_ms(&self) -> i64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn published(&self) -> Option<Arc<InstanceRecord>> {
        self.published.lock().clone()
    }

    /// Locks the entry if no request is using it (for eviction).
    pub fn try_hold(self: &Arc<Self>) -> Option<Held> {
        let slot = self.slot.clone().try_lock_owned().ok()?;
        Some(Held {
            entry: self.clone(),
            slot,
        })
    }
}

impl Held {
    /// Records a committed (or freshly loaded) record as the instance's current one.
    pub fn set_loaded(&mut self, record: Arc<InstanceRecord>) {
        *self.entry.published.lock() = Some(record.clone());
        *self.slot = Slot::Loaded(record);
    }

    /// Forgets the cached record; the next request reloads from the store.
    pub fn set_cold(&mut self) {
        *self.entry.published.lock() = None;
        *self.slot = Slot::Cold;
    }

    pub fn loaded(&self) -> Option<Arc<InstanceRecord>> {
        match &*self.slot {
            Slot::Loaded(r) => Some(r.clone()),
            Slot::Cold | Slot::Retired => None,
        }
    }
}

impl Inner {
    /// Locks the live entry for `key`, inserting a cold one when there is none.
    pub(super) async fn hold(self: &Arc<Self>, key: &InstanceKey) -> Held {
        loop {
            let (entry, inserted) = match self.hot.entry(key.clone()) {
                MapEntry::Occupied(o) => (o.get().clone(), false),
                MapEntry::Vacant(v) => (v.insert(Arc::new(Entry::new())).clone(), true),
            };
            if inserted {
                self.evict_if_over_bound();
            }
            entry.touch();
            let slot = entry.slot.clone().lock_owned().await;
            if matches!(*slot, Slot::Retired) {
                continue;
            }
            return Held { entry, slot };
        }
    }

    /// The record of a held entry, loading it from the store if the entry is cold.
    /// `None` when the store has no such instance; the entry then stays cold.
    pub(super) async fn ensure_loaded(
        &self,
        key: &InstanceKey,
        held: &mut Held,
    ) -> Result<Option<Arc<InstanceRecord>>, RegistryError> {
        if let Some(record) = held.loaded() {
            return Ok(Some(record));
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        metrics::instance_loaded();
        let Some(record) = self.store.load_instance(key).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        held.set_loaded(record.clone());
        tracing::debug!(instance = %key, version = record.version, "instance loaded");
        Ok(Some(record))
    }

    /// Removes a held entry from the map and marks it retired.
    pub(super) fn retire(&self, key: &InstanceKey, mut held: Held) {
        *held.entry.published.lock() = None;
        *held.slot = Slot::Retired;
        self.hot.remove_if(key, |_, e| Arc::ptr_eq(e, &held.entry));
    }

    /// Holds the entry and loads it; `InstanceNotFound` (and the entry retired) when absent.
    pub(super) async fn hold_existing(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<(Held, Arc<InstanceRecord>), RegistryError> {
        let mut held = self.hold(key).await;
        match self.ensure_loaded(key, &mut held).await? {
            Some(record) => Ok((held, record)),
            None => {
                self.retire(key, held);
                Err(RegistryError::InstanceNotFound(key.clone()))
            }
        }
    }

    /// The current record: the published copy when hot, else a load (once per cold entry).
    pub(super) async fn read(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let entry = self.hot.get(key).map(|e| e.value().clone());
        if let Some(record) = entry.as_ref().and_then(|e| e.published()) {
            if let Some(e) = &entry {
                e.touch();
            }
            return Ok(record);
        }
        let (_held, record) = self.hold_existing(key).await?;
        Ok(record)
    }
}
