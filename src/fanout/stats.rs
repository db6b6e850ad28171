//! Counters of the fan-out, read by tests, benchmarks and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    conflated: AtomicU64,
    caught_up: AtomicU64,
    full_fallbacks: AtomicU64,
}

/// A snapshot of the fan-out's counters and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanoutStats {
    /// Instances with a topic (subscribed now, or recently).
    pub topics: usize,
    /// Subscriptions attached to those topics.
    pub subscriptions: usize,
    /// Bytes of patch history held across topics.
    pub history_bytes: usize,
    /// Updates built (each serialized once, whatever the number of subscribers).
    pub published: u64,
    /// Unsent updates replaced by a newer one because the subscriber had not taken them yet.
    pub conflated: u64,
    /// Patch frames sent from history to a diff subscriber that had fallen behind or resumed.
    pub caught_up_frames: u64,
    /// Diff subscribers that got a full update because history no longer reached back (or was
    /// larger than the full frame).
    pub full_fallbacks: u64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn published(&self) {
        bump(&self.published, 1);
    }

    pub fn conflated(&self) {
        bump(&self.conflated, 1);
    }

    pub fn catch_up(&self, frames: usize) {
        bump(&self.caught_up, frames as u64);
    }

    pub fn full_fallback(&self) {
        bump(&self.full_fallbacks, 1);
    }

    pub fn fill(&self, stats: &mut FanoutStats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        stats.published = get(&self.published);
        stats.conflated = get(&self.conflated);
        stats.caught_up_frames = get(&self.caught_up);
        stats.full_fallbacks = get(&self.full_fallbacks);
    }
}
