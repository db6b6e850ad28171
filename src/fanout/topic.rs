//! One instance's subscribers, its latest published update, and its patch history.
//!
//! Lock order: a topic's state lock may be held while subscription slot locks and the outbox
//! lock are taken (publishing), never the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::Value;

use super::history::History;
use super::patch::diff;
use super::stats::Counters;
use super::subscription::{Ended, Subscription};
use super::update::{build, view_of, Base, Frame, Update};
use crate::ids::InstanceKey;
use crate::store::InstanceRecord;

/// The topic was removed from the hub (idle, or its instance deleted); look it up again.
#[derive(Debug)]
pub struct Retired;

pub struct Topic {
    key: InstanceKey,
    counters: Arc<Counters>,
    /// The newest committed record not yet published.
    pending: Mutex<Option<Arc<InstanceRecord>>>,
    /// Set while the topic waits in a worker's queue, so it is queued at most once.
    queued: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    latest: Option<Arc<Update>>,
    /// The view `latest` was built from: the base of the next patch.
    latest_view: Option<Arc<Value>>,
    history: History,
    subscribers: HashMap<u64, Arc<Subscription>>,
    /// When the last subscriber left (or the topic was made), while it has none.
    idle_since: Option<Instant>,
    retired: bool,
}

impl Topic {
    pub(super) fn new(key: InstanceKey, counters: Arc<Counters>) -> Self {
        Self {
            key,
            counters,
            pending: Mutex::new(None),
            queued: AtomicBool::new(false),
            state: Mutex::new(State {
                idle_since: Some(Instant::now()),
                ..State::default()
            }),
        }
    }

    pub fn key(&self) -> &InstanceKey {
        &self.key
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Keeps `record` as the next to publish if it is newer than what waits; `true` when the
    /// caller must queue the topic for a worker.
    pub(super) fn offer(&self, record: &Arc<InstanceRecord>) -> bool {
        {
            let mut pending = self.pending.lock();
            if pending.as_ref().is_none_or(|p| p.version < record.version) {
                *pending = Some(record.clone());
            }
        }
        !self.queued.swap(true, Ordering::AcqRel)
    }

    /// Publishes what waits, if anything: builds the update once and offers it to every
    /// subscriber. Run by a worker; one topic is never published by two workers at once
    /// because it is queued at most once.
    pub(super) fn publish_pending(&self) {
        self.queued.store(false, Ordering::Release);
        let Some(record) = self.pending.lock().take() else {
            return;
        };
        let (base, base_view) = {
            let state = self.state.lock();
            if state.retired {
                return;
            }
            match &state.latest {
                Some(latest) if latest.seq >= record.version => return,
                Some(latest) => (Some(latest.position()), state.latest_view.clone()),
                None => (None, None),
            }
        };
        let view = view_of(&record);
        let ops = base_view.map(|b| diff(&b, &view));
        let prev = base.zip(ops.as_deref());
        let mut update = build(&self.key, &record, &view, prev);

        let mut state = self.state.lock();
        let latest = state.latest.as_ref().map(|l| l.position());
        if state.retired || latest.is_some_and(|l| l.seq >= update.seq) {
            return;
        }
        if latest != base {
            // A subscriber seeded a newer view meanwhile: the patch's base is not the latest.
            update.base = None;
            update.patch = None;
        }
        let update = Arc::new(update);
        state.history.push(&update);
        state.latest = Some(update.clone());
        state.latest_view = Some(Arc::new(view));
        self.counters.published();
        for subscriber in state.subscribers.values() {
            subscriber.offer(&update);
        }
    }

    /// Adds (or re-adds) `subscriber` and offers it the current update. `record` is what the
    /// subscriber's authorization read returned; it becomes the latest update when nothing
    /// newer was published, so a subscriber never starts from an older state than it read.
    pub(super) fn attach(
        &self,
        subscriber: &Arc<Subscription>,
        record: &InstanceRecord,
    ) -> Result<(), Retired> {
        let needs_seed = {
            let state = self.state.lock();
            if state.retired {
                return Err(Retired);
            }
            state.latest.as_ref().is_none_or(|l| l.seq < record.version)
        };
        let seed = needs_seed.then(|| {
            let view = view_of(record);
            (Arc::new(build(&self.key, record, &view, None)), view)
        });

        let mut state = self.state.lock();
        if state.retired {
            return Err(Retired);
        }
        if let Some((update, view)) = seed {
            if state.latest.as_ref().is_none_or(|l| l.seq < update.seq) {
                state.latest = Some(update);
                state.latest_view = Some(Arc::new(view));
            }
        }
        state.subscribers.insert(subscriber.id, subscriber.clone());
        state.idle_since = None;
        if let Some(latest) = &state.latest {
            subscriber.offer_initial(latest);
        }
        Ok(())
    }

    pub(super) fn remove(&self, id: u64) {
        let mut state = self.state.lock();
        if state.subscribers.remove(&id).is_some() && state.subscribers.is_empty() {
            state.idle_since = Some(Instant::now());
        }
    }

    /// The patch frames from `from` to `to`, if history still holds them and they are
    /// smaller than `budget_bytes`.
    pub(super) fn catch_up(&self, from: &Base, to: u64, budget_bytes: usize) -> Option<Vec<Frame>> {
        self.state.lock().history.chain(from, to, budget_bytes)
    }

    /// Marks the topic retired if it has had no subscriber since `cutoff` and nothing waits
    /// to be published; `true` when it was.
    pub(super) fn retire_if_idle(&self, cutoff: Instant) -> bool {
        if self.queued.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.state.lock();
        let idle = state.subscribers.is_empty() && state.idle_since.is_some_and(|t| t <= cutoff);
        if idle {
            state.retired = true;
        }
        idle
    }

    /// Marks the topic retired if it never published, has no subscriber and nothing waits;
    /// `true` when it was.
    pub(super) fn retire_if_unused(&self) -> bool {
        if self.queued.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.state.lock();
        let unused = state.subscribers.is_empty() && state.latest.is_none();
        if unused {
            state.retired = true;
        }
        unused
    }

    /// Retires the topic and ends every subscription with `why`.
    pub(super) fn end(&self, why: Ended) {
        let subscribers: Vec<Arc<Subscription>> = {
            let mut state = self.state.lock();
            state.retired = true;
            state.subscribers.drain().map(|(_, s)| s).collect()
        };
        for subscriber in subscribers {
            subscriber.end(why);
        }
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.state.lock().subscribers.len()
    }

    /// Bytes of patch history held, for stats.
    pub(super) fn history_bytes(&self) -> usize {
        self.state.lock().history.bytes()
    }
}
