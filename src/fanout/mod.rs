//! Subscriber sets per instance; each committed change is serialized once and shared.
//!
//! The path of a change: the registry calls [`Fanout::on_commit`] after each durable write. If
//! the instance has a topic (someone subscribed, now or within the linger period), the record
//! is parked on the topic, newest wins, and the topic is queued to one of a few worker tasks;
//! the committing task never waits for subscribers. The worker diffs the new view against the
//! previous one, serializes the full frame and the patch frame once (`update`), appends the
//! patch to the topic's bounded history (`history`) and offers the shared update to every
//! subscription (`subscription`), each of which holds at most one unsent update.
//!
//! Layout: `patch` (RFC 6902 generator and applier), `update` (frames), `history` (recent
//! patches), `topic` (one instance's subscribers), `subscription` (conflation and catch-up),
//! `stats`.
//!
//! Honest limits: the fan-out sees the commits of this node only, so with a store shared by
//! several nodes a subscriber hears about the writes made through its own node. Topics of
//! instances nobody subscribes to cost nothing: their commits are dropped at the first lookup.

mod history;
pub mod patch;
mod stats;
mod subscription;
mod topic;
pub mod update;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::ids::InstanceKey;
use crate::registry::CommitListener;
use crate::store::InstanceRecord;

pub use stats::FanoutStats;
pub use subscription::{Ended, Next, Outbox, Subscription};
pub use topic::{Retired, Topic};
pub use update::{Base, Frame};

use stats::Counters;

/// How long a topic outlives its last subscriber, keeping its patch history, so that a client
/// that reconnects (the official one does so at once) resumes with patches.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(60);

/// Settings of the fan-out.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Tasks that build and hand out updates; instances are spread over them by key.
    pub workers: usize,
    pub linger: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            linger: DEFAULT_LINGER,
        }
    }
}

/// What a subscriber asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Patches instead of full updates after the first.
    pub diffs: bool,
    /// The position the client already holds (`lastSeq`, with `lastTs` when given).
    pub resume_from: Option<Base>,
}

enum Job {
    Publish(Arc<Topic>),
    Flush(oneshot::Sender<()>),
}

/// The fan-out hub. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

struct Inner {
    topics: DashMap<InstanceKey, Arc<Topic>>,
    jobs: Vec<mpsc::UnboundedSender<Job>>,
    hasher: std::collections::hash_map::RandomState,
    counters: Arc<Counters>,
    next_id: AtomicU64,
    linger: Duration,
}

impl Fanout {
    /// Starts the worker tasks and the sweeper of idle topics; they end when the last clone
    /// of the hub is dropped. Must be called inside a tokio runtime.
    pub fn start(config: FanoutConfig) -> Fanout {
        let mut jobs = Vec::new();
        for worker in 0..config.workers.max(1) {
            let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
            jobs.push(jobs_tx);
            tokio::spawn(run_worker(worker, jobs_rx));
        }
        let fanout = Fanout {
            inner: Arc::new(Inner {
                topics: DashMap::new(),
                jobs,
                hasher: Default::default(),
                counters: Arc::default(),
                next_id: AtomicU64::new(1),
                linger: config.linger,
            }),
        };
        tokio::spawn(run_sweeper(Arc::downgrade(&fanout.inner)));
        fanout
    }

    /// The topic of `key`, made if there is none. From the moment this returns, commits of the
    /// instance are captured, so a state read afterwards cannot miss a later change.
    pub fn topic(&self, key: &InstanceKey) -> Arc<Topic> {
        if let Some(topic) = self.inner.topics.get(key) {
            return topic.clone();
        }
        self.inner
            .topics
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Topic::new(key.clone(), self.inner.counters.clone())))
            .clone()
    }

    /// The subscription of `outbox` to `topic`: `existing` when it hangs off this topic (a
    /// repeated subscribe), else a new one (an `existing` one of a retired topic is detached).
    /// It receives nothing until [`Fanout::attach`].
    pub fn subscription(
        &self,
        topic: &Arc<Topic>,
        existing: Option<&Arc<Subscription>>,
        outbox: &Arc<Outbox>,
    ) -> Arc<Subscription> {
        match existing {
            Some(s) if s.belongs_to(topic) => s.clone(),
            other => {
                if let Some(old) = other {
                    old.detach();
                }
                let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
                Arc::new(Subscription::new(id, topic.clone(), outbox.clone()))
            }
        }
    }

    /// Attaches `subscription` to its topic in `mode` and offers it the current state.
    /// `record` is the state the subscriber was allowed to read. `Err(Retired)` when the topic
    /// was retired meanwhile (instance deleted, or idle): look the topic up and read again.
    pub fn attach(
        &self,
        subscription: &Arc<Subscription>,
        mode: Mode,
        record: &InstanceRecord,
    ) -> Result<(), Retired> {
        subscription.reset(mode.diffs, mode.resume_from);
        subscription.topic().attach(subscription, record)
    }

    /// Drops `topic` when a subscribe that made it failed and nobody else uses it.
    pub fn release(&self, topic: &Arc<Topic>) {
        self.inner.topics.remove_if(topic.key(), |_, t| {
            Arc::ptr_eq(t, topic) && t.retire_if_unused()
        });
    }

    /// Resolves once every commit handed over before the call has been published.
    pub async fn flush(&self) {
        let mut acks = Vec::new();
        for jobs_tx in &self.inner.jobs {
            let (ack_tx, ack_rx) = oneshot::channel();
            if jobs_tx.send(Job::Flush(ack_tx)).is_ok() {
                acks.push(ack_rx);
            }
        }
        for ack in acks {
            let _ = ack.await;
        }
    }

    /// Retires topics without subscribers for at least `idle`; returns how many went.
    pub fn sweep(&self, idle: Duration) -> usize {
        self.inner.sweep(idle)
    }

    pub fn stats(&self) -> FanoutStats {
        let mut stats = FanoutStats::default();
        for topic in self.inner.topics.iter() {
            stats.topics += 1;
            stats.subscriptions += topic.subscriber_count();
            stats.history_bytes += topic.history_bytes();
        }
        self.inner.counters.fill(&mut stats);
        stats
    }

    fn schedule(&self, topic: Arc<Topic>) {
        let shard = self.inner.hasher.hash_one(topic.key()) as usize % self.inner.jobs.len();
        if self.inner.jobs[shard].send(Job::Publish(topic)).is_err() {
            tracing::error!(shard, "fan-out worker is gone; update not published");
        }
    }
}

impl CommitListener for Fanout {
    /// Parks the record on the instance's topic, if it has one, and queues the topic. Never
    /// waits: a map lookup, a mutex held for a pointer swap, a channel send.
    fn on_commit(&self, key: &InstanceKey, record: &Arc<InstanceRecord>, _effects: &[Value]) {
        let Some(topic) = self.inner.topics.get(key).map(|t| t.clone()) else {
            return;
        };
        if topic.offer(record) {
            self.schedule(topic);
        }
    }

    /// Ends every subscription of the deleted instance and forgets its history.
    fn on_delete(&self, key: &InstanceKey) {
        if let Some((_, topic)) = self.inner.topics.remove(key) {
            topic.end(Ended::Deleted);
        }
    }
}

impl Inner {
    fn sweep(&self, idle: Duration) -> usize {
        let Some(cutoff) = Instant::now().checked_sub(idle) else {
            return 0;
        };
        let before = self.topics.len();
        self.topics.retain(|_, topic| !topic.retire_if_idle(cutoff));
        before.saturating_sub(self.topics.len())
    }
}

/// Publishes queued topics until the hub is dropped. A panic while publishing one topic is a
/// bug: it is logged and the worker goes on with the next.
async fn run_worker(worker: usize, mut jobs_rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs_rx.recv().await {
        match job {
            Job::Publish(topic) => {
                let published = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    topic.publish_pending()
                }));
                if published.is_err() {
                    tracing::error!(worker, instance = %topic.key(), "publishing an update panicked");
                }
            }
            Job::Flush(ack_tx) => {
                let _ = ack_tx.send(());
            }
        }
    }
}

/// Retires idle topics every quarter of the linger period (between 1 s and 30 s) until the hub
/// is dropped.
async fn run_sweeper(hub: std::sync::Weak<Inner>) {
    let period = match hub.upgrade() {
        Some(inner) => (inner.linger / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)),
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = hub.upgrade() else {
            return;
        };
        let retired = inner.sweep(inner.linger);
        if retired > 0 {
            tracing::debug!(retired, topics = inner.topics.len(), "retired idle topics");
        }
    }
}

#[cfg(test)]
mod tests;
