//! Eviction: a bound on hot entries (least recently used first) and an idle-time sweeper.
//! The policy itself is documented on [`super::Registry`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::entry::Entry;
use super::Inner;
use crate::clock::now_ms;
use crate::ids::InstanceKey;

impl Inner {
    /// Called after an insert; evicts down to 90% of the bound when above it. One eviction
    /// runs at a time, on the blocking pool (the scan is proportional to the map's size).
    pub(super) fn evict_if_over_bound(self: &Arc<Inner>) {
        if self.hot.len() <= self.max_hot || self.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::task::spawn_blocking(move || {
            let target = inner.max_hot - inner.max_hot / 10;
            let excess = inner.hot.len().saturating_sub(target);
            let victims = inner.least_recently_used(excess);
            let evicted = inner.evict(victims);
            inner.evicting.store(false, Ordering::Release);
            tracing::debug!(
                evicted,
                hot = inner.hot.len(),
                "evicted instances over the bound"
            );
        });
    }

    /// Evicts entries unused for at least `idle_ms`.
    pub(super) fn evict_idle_for(&self, idle_ms: i64) -> usize {
        let cutoff = now_ms().saturating_sub(idle_ms);
        let victims: Vec<(InstanceKey, Arc<Entry>)> = self
            .hot
            .iter()
            .filter(|e| e.value().last_used_ms() <= cutoff)
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        self.evict(victims)
    }

    /// The `n` entries used longest ago.
    fn least_recently_used(&self, n: usize) -> Vec<(InstanceKey, Arc<Entry>)> {
        if n == 0 {
            return Vec::new();
        }
        let mut all: Vec<(i64, InstanceKey, Arc<Entry>)> = self
            .hot
            .iter()
            .map(|e| (e.value().last_used_ms(), e.key().clone(), e.value().clone()))
            .collect();
        if n < all.len() {
            all.select_nth_unstable_by_key(n, |(used, _, _)| *used);
            all.truncate(n);
        }
        all.into_iter().map(|(_, k, e)| (k, e)).collect()
    }

    /// Evicts each candidate that no request is using; returns how many went.
    fn evict(&self, victims: Vec<(InstanceKey, Arc<Entry>)>) -> usize {
        let mut evicted = 0;
        for (key, entry) in victims {
            let Some(held) = entry.try_hold() else {
                continue;
            };
            self.retire(&key, held);
            evicted += 1;
        }
        self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        crate::metrics::events::instances_evicted(evicted);
        evicted
    }
}

/// Runs the idle sweep until the registry is dropped or drained.
pub(super) fn spawn_sweeper(registry: Weak<Inner>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = match registry.upgrade() {
            Some(inner) => Duration::from_millis((inner.idle_evict_ms / 4).max(0) as u64)
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            None => return,
        };
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = registry.upgrade() else {
                return;
            };
            if inner.inflight.is_closed() {
                return;
            }
            let evicted = inner.evict_idle_for(inner.idle_evict_ms);
            if evicted > 0 {
                tracing::debug!(evicted, hot = inner.hot.len(), "evicted idle instances");
            }
        }
    })
}
