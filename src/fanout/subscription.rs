//! One connection's interest in one instance, and the connection's list of subscriptions with
//! something to send.
//!
//! **Conflation.** A subscription holds at most one unsent update: a newer one replaces it. A
//! connection that cannot keep up therefore receives the latest state, never a growing queue;
//! the memory a slow subscriber can pin is one update per subscription. A subscriber that asked
//! for diffs and missed an update is caught up from the instance's patch history when it still
//! reaches back and is smaller than a full frame, else it gets a full update.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::topic::Topic;
use super::update::{patch_frame, Base, Frame, Update};
use crate::ids::InstanceKey;
use crate::metrics::{fanout as metrics, LiveGauge};

/// Why a subscription ended without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The instance was deleted.
    Deleted,
}

/// What the connection should do next for one subscription.
#[derive(Debug)]
pub enum Next {
    Nothing,
    /// Frames to write, in order.
    Frames(Vec<Frame>),
    Ended(Ended),
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest update not yet written.
    update: Option<Arc<Update>>,
    /// The next write answers a subscribe: something is sent even if the client is current.
    initial: bool,
    ended: Option<Ended>,
    detached: bool,
    /// Whether this subscriber takes patches.
    diffs: bool,
    /// The last position the client holds: sent by us, or claimed on subscribe (`lastSeq`).
    sent: Option<Base>,
}

/// One connection's subscription to one instance.
pub struct Subscription {
    pub(super) id: u64,
    key: InstanceKey,
    topic: Arc<Topic>,
    outbox: Arc<Outbox>,
    slot: Mutex<Slot>,
    /// Set while the subscription sits in the outbox's ready list.
    queued: AtomicBool,
    /// Counts this subscription in the subscriptions metric for as long as it lives.
    _live: LiveGauge,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(super) fn new(id: u64, topic: Arc<Topic>, outbox: Arc<Outbox>) -> Self {
        Self {
            id,
            key: topic.key().clone(),
            topic,
            outbox,
            slot: Mutex::new(Slot::default()),
            queued: AtomicBool::new(false),
            _live: metrics::subscription(),
        }
    }

    pub fn key(&self) -> &InstanceKey {
        &self.key
    }

    pub(super) fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    /// True when this subscription hangs off `topic` (and not an older, retired one).
    pub fn belongs_to(&self, topic: &Arc<Topic>) -> bool {
        Arc::ptr_eq(&self.topic, topic)
    }

    /// Sets the delivery mode for what follows a (re-)subscribe: patches or full updates, and
    /// the position the client claims to hold.
    pub(super) fn reset(&self, diffs: bool, claimed: Option<Base>) {
        let mut slot = self.slot.lock();
        slot.diffs = diffs;
        slot.sent = if diffs { claimed } else { None };
    }

    /// Offers a newly published update; keeps it only if newer than the unsent one.
    pub(super) fn offer(self: &Arc<Self>, update: &Arc<Update>) {
        let mut slot = self.slot.lock();
        if slot.detached || slot.ended.is_some() {
            return;
        }
        match &slot.update {
            Some(unsent) if unsent.seq >= update.seq => return,
            Some(_) => self.topic.counters().conflated(),
            None => {}
        }
        slot.update = Some(update.clone());
        drop(slot);
        self.wake();
    }

    /// Offers the current update in answer to a subscribe: the client hears back even when it
    /// already holds this update.
    pub(super) fn offer_initial(self: &Arc<Self>, update: &Arc<Update>) {
        let mut slot = self.slot.lock();
        if slot.detached || slot.ended.is_some() {
            return;
        }
        let newer_pending = slot.update.as_ref().filter(|u| u.seq > update.seq).cloned();
        slot.update = Some(newer_pending.unwrap_or_else(|| update.clone()));
        slot.initial = true;
        drop(slot);
        self.wake();
    }

    /// Ends the subscription; the connection is told once.
    pub(super) fn end(self: &Arc<Self>, why: Ended) {
        let mut slot = self.slot.lock();
        if slot.detached {
            return;
        }
        slot.ended = Some(why);
        slot.update = None;
        drop(slot);
        self.wake();
    }

    /// Stops all delivery; the connection calls this on unsubscribe and when it closes.
    pub fn detach(&self) {
        {
            let mut slot = self.slot.lock();
            slot.detached = true;
            slot.update = None;
        }
        self.topic.remove(self.id);
    }

    pub fn is_detached(&self) -> bool {
        self.slot.lock().detached
    }

    fn wake(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.outbox.push(self.clone());
        }
    }

    /// Takes what is due for this subscription and records it as sent. Called by the
    /// connection's writer only.
    pub fn take(&self) -> Next {
        self.queued.store(false, Ordering::Release);
        let (update, initial, diffs, sent) = {
            let mut slot = self.slot.lock();
            if slot.detached {
                return Next::Nothing;
            }
            if let Some(why) = slot.ended {
                slot.detached = true;
                return Next::Ended(why);
            }
            let Some(update) = slot.update.take() else {
                return Next::Nothing;
            };
            let initial = std::mem::take(&mut slot.initial);
            (update, initial, slot.diffs, slot.sent)
        };
        // The slot lock is released before the topic's is taken: publishing holds the topic's
        // lock while it takes slot locks, so the reverse order here could deadlock.
        let frames = self.frames_for(&update, initial, diffs, sent);
        // A full frame is a clone of the update's shared `full` bytes; a patch never is.
        let full = frames
            .iter()
            .filter(|f| f.as_ptr() == update.full.as_ptr())
            .count();
        metrics::pushed(full, frames.len() - full);
        if !frames.is_empty() {
            let mut slot = self.slot.lock();
            let newer = slot.sent.is_none_or(|s| s.seq < update.seq);
            if initial || newer {
                slot.sent = Some(update.position());
            }
        }
        Next::Frames(frames)
    }

    fn frames_for(
        &self,
        update: &Update,
        initial: bool,
        diffs: bool,
        sent: Option<Base>,
    ) -> Vec<Frame> {
        let Some(sent) = sent else {
            return vec![update.full.clone()];
        };
        let current = update.position();
        if update.seq < sent.seq || (update.seq == sent.seq && !sent.same_as(&current)) {
            // Stale (never sent), or the client holds something this instance never had
            // (a future sequence, or an earlier incarnation): only a subscribe answer goes out.
            if !initial {
                return Vec::new();
            }
            return vec![update.full.clone()];
        }
        if update.seq == sent.seq {
            if !initial {
                return Vec::new();
            }
            if !diffs {
                return vec![update.full.clone()];
            }
            // Already current: an empty patch confirms the subscription.
            return vec![patch_frame(
                &self.key,
                update.seq,
                update.seq,
                update.ts_ms,
                &[],
            )];
        }
        if !diffs {
            return vec![update.full.clone()];
        }
        if let (Some(base), Some(patch)) = (update.base, &update.patch) {
            if base.same_as(&sent) {
                return vec![patch.clone()];
            }
        }
        let counters = self.topic.counters();
        match self.topic.catch_up(&sent, update.seq, update.full.len()) {
            Some(frames) => {
                counters.catch_up(frames.len());
                frames
            }
            None => {
                counters.full_fallback();
                vec![update.full.clone()]
            }
        }
    }
}

/// A connection's list of subscriptions with something to send, and the wake-up for its writer.
#[derive(Default)]
pub struct Outbox {
    ready: Mutex<Vec<Arc<Subscription>>>,
    notify: Notify,
}

impl Outbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn push(&self, subscription: Arc<Subscription>) {
        self.ready.lock().push(subscription);
        self.notify.notify_one();
    }

    /// The subscriptions that became ready since the last call; possibly none.
    pub fn take_ready(&self) -> Vec<Arc<Subscription>> {
        std::mem::take(&mut *self.ready.lock())
    }

    /// Resolves once something was pushed since the last wake-up. Callers drain with
    /// [`Outbox::take_ready`] before waiting, so a wake-up lost to cancellation costs nothing.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}
