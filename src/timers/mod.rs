//! Durable delayed events (`after`, delayed sends, self-sends) and the outbox, woken on time
//! and re-armed on restart.
//!
//! The truth is in the store: every instance row carries its timers and outbox, and
//! `wake_at_ms`, the earliest time something of it is ready, which every backend indexes.
//! This module only decides *when* to look at an instance:
//!
//! - at start, and every half [`HORIZON_MS`], it reads the wake-up index up to now + horizon
//!   and arms those instances (so a restart re-arms everything, overdue timers at once);
//! - as a [`CommitListener`] it re-arms (or forgets) an instance from each commit's
//!   `wake_at_ms`, when that falls within the horizon (later ones are found by a scan);
//! - on waking it re-reads the wall clock and takes only what is due by it, so nothing fires
//!   early; [`Registry::deliver_due`] checks each timer's time again under the instance's
//!   lock, and delivers it through the normal event path.
//!
//! Evicting an idle instance from the registry does not disarm it: delivering loads it.
//! The wake-up times of instances due within the horizon are held in memory.

mod schedule;
mod worker;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::config::EffectsConfig;
use crate::ids::InstanceKey;
use crate::registry::{CommitListener, Registry};
use crate::store::{InstanceRecord, Store};

use schedule::Schedule;

/// How far ahead wake-ups are held in memory; the index is scanned every half of it. Not
/// configurable yet: it only trades memory (instances due within it) against scan frequency,
/// and a minute keeps both small.
pub const HORIZON_MS: i64 = 60_000;

/// Delivery tasks running at once. Each holds one instance at a time, so this bounds the
/// write load timers put on the registry after a restart with many overdue timers.
const MAX_CONCURRENT_DELIVERIES: usize = 64;

/// The timer service of one server. Cheap to clone.
#[derive(Clone)]
pub struct Timers {
    shared: Arc<Shared>,
}

struct Shared {
    schedule: Mutex<Schedule>,
    /// Wakes the worker when the schedule changed.
    changed: Notify,
    stop_tx: watch::Sender<bool>,
    /// Wait before trying an instance again after a delivery that could not be tried.
    backoff_ms: i64,
}

impl Timers {
    /// Starts the worker: it scans the wake-up index at once, then keeps delivering until
    /// [`Timers::stop`]. Register the result as a commit listener of `registry`.
    pub fn start(registry: Registry, store: Arc<dyn Store>, config: &EffectsConfig) -> Timers {
        let (stop_tx, stop_rx) = watch::channel(false);
        let backoff_ms = i64::try_from(config.retry_interval_ms)
            .unwrap_or(i64::MAX)
            .clamp(10, 5_000);
        let timers = Timers {
            shared: Arc::new(Shared {
                schedule: Mutex::new(Schedule::default()),
                changed: Notify::new(),
                stop_tx,
                backoff_ms,
            }),
        };
        let shared = timers.shared.clone();
        tokio::spawn(async move {
            worker::run(shared, registry, store, stop_rx).await;
            // The worker only returns when told to stop; anything else would be a bug that
            // leaves timers undelivered until the next start, so say so loudly.
            tracing::info!("timer worker stopped");
        });
        timers
    }

    /// Stops waking instances. Deliveries already running finish (or are refused by the
    /// draining registry); everything pending stays in the store for the next start.
    pub fn stop(&self) {
        let _ = self.shared.stop_tx.send(true);
    }

    /// Instances with a wake-up time held in memory now.
    pub fn armed(&self) -> usize {
        self.shared.schedule.lock().len()
    }
}

impl Shared {
    /// Arms `key` at `at` from a commit: within the horizon it replaces what was there;
    /// beyond it (or `None`) the instance is forgotten until a scan finds it.
    fn arm_from_commit(&self, key: &InstanceKey, at: Option<i64>) {
        let within = at.filter(|at| *at <= crate::clock::now_ms().saturating_add(HORIZON_MS));
        let mut schedule = self.schedule.lock();
        let earlier = match (within, schedule.next_wake()) {
            (Some(at), Some(next)) => at < next,
            (Some(_), None) => true,
            (None, _) => false,
        };
        schedule.set(key, within);
        drop(schedule);
        if earlier {
            self.changed.notify_one();
        }
    }
}

impl CommitListener for Timers {
    fn on_commit(&self, key: &InstanceKey, record: &Arc<InstanceRecord>, _effects: &[Value]) {
        self.shared.arm_from_commit(key, record.effects.wake_at_ms);
    }

    fn on_delete(&self, key: &InstanceKey) {
        self.shared.arm_from_commit(key, None);
    }
}
