//! Counters of what the runtime did, for metrics and for tests that must observe caching.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::metrics::LiveGauge;

/// A point-in-time copy of the runtime's counters. Every field except `guests_live` and
/// `guests_pinned` only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeStats {
    /// Compiled modules loaded from the artifact cache on disk.
    pub artifacts_loaded: u64,
    /// Modules compiled with Cranelift (cache misses).
    pub artifacts_compiled: u64,
    /// Cache files found corrupt or incompatible, deleted and rebuilt.
    pub artifacts_discarded: u64,
    /// Machines loaded into a template guest (compile not included).
    pub templates_built: u64,
    /// Warm guests made from a template's memory.
    pub guests_created: u64,
    /// Guest calls made for callers (load of templates not included).
    pub calls: u64,
    /// Calls stopped at their deadline.
    pub deadline_exceeded: u64,
    /// Calls that ran out of memory, cleanly or by trapping at the cap.
    pub out_of_memory: u64,
    /// Any other trap.
    pub traps: u64,
    /// Guests alive now (warm in a pool, pinned, or serving a call); a gauge.
    pub guests_live: u64,
    /// Guests pinned to machine instances now (see `Pinned`); a gauge, included in
    /// `guests_live`.
    pub guests_pinned: u64,
}

/// The live counters behind [`RuntimeStats`].
#[derive(Debug, Default)]
pub struct Counters {
    pub artifacts_loaded: AtomicU64,
    pub artifacts_compiled: AtomicU64,
    pub artifacts_discarded: AtomicU64,
    pub templates_built: AtomicU64,
    pub guests_created: AtomicU64,
    pub calls: AtomicU64,
    pub deadline_exceeded: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub traps: AtomicU64,
    guests_live: AtomicU64,
    guests_pinned: AtomicU64,
}

/// Counts one live guest from creation to drop, in these counters and in the live-guest
/// metric, so neither can drift.
#[derive(Debug)]
pub struct LiveGuest {
    counters: Arc<Counters>,
    _metric: LiveGauge,
}

impl LiveGuest {
    pub fn new(counters: &Arc<Counters>) -> Self {
        counters.guests_live.fetch_add(1, Ordering::Relaxed);
        Self {
            counters: counters.clone(),
            _metric: crate::metrics::runtime::live_guest(),
        }
    }
}

impl Drop for LiveGuest {
    fn drop(&mut self) {
        self.counters.guests_live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One of the `max_pinned` slots for pinned guests, held by a pinned guest from the moment it
/// is pinned until it is dropped; counts in these counters and in the pinned-guest metric.
#[derive(Debug)]
pub struct PinSlot {
    counters: Arc<Counters>,
    _metric: LiveGauge,
}

impl PinSlot {
    /// A slot, unless `limit` slots are taken.
    pub fn try_take(counters: &Arc<Counters>, limit: usize) -> Option<Self> {
        let limit = limit as u64;
        counters
            .guests_pinned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Self {
            counters: counters.clone(),
            _metric: crate::metrics::runtime::pinned_guest(),
        })
    }
}

impl Drop for PinSlot {
    fn drop(&mut self) {
        self.counters.guests_pinned.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> RuntimeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RuntimeStats {
            artifacts_loaded: get(&self.artifacts_loaded),
            artifacts_compiled: get(&self.artifacts_compiled),
            artifacts_discarded: get(&self.artifacts_discarded),
            templates_built: get(&self.templates_built),
            guests_created: get(&self.guests_created),
            calls: get(&self.calls),
            deadline_exceeded: get(&self.deadline_exceeded),
            out_of_memory: get(&self.out_of_memory),
            traps: get(&self.traps),
            guests_live: get(&self.guests_live),
            guests_pinned: get(&self.guests_pinned),
        }
    }
}
