//! Invoked services: the module's share of a committed step, run on the guest pinned to the
//! instance until it settles (docs/effects.md, "Invoked services" and "Settling").
//!
//! A step whose token is not null is committed first; then `run_effects(token)` runs on the
//! guest that holds the token, and what its outbox asks for is carried out here:
//!
//! - host operations (`fetch`, `sleep`) run on tasks of their own; each result goes back with
//!   `complete_op`, whose outbox is handled the same way;
//! - `abort` cancels operations in flight;
//! - `events` (service results, `sendBack`) are delivered to the instance in order, each as its
//!   own step through the normal write path, and so its own commit with its own effects;
//! - `sends` (to the parent) are queued in the instance's durable outbox.
//!
//! A [`Runner`] holds the pinned guest of one instance while anything of this runs. The
//! instance's later steps run on that guest. When nothing runs, nothing is in flight and no
//! event waits, the instance has settled and the guest is released. When the settle window
//! closes first, running services are stopped, operations cancelled, their markers written
//! `Interrupted`, and the guest released (`settle`).

mod owed;
mod run;
mod settle;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::effects::HostOps;
use crate::ids::InstanceKey;
use crate::runtime::{Pinned, SendTo};

pub(super) use run::{ModuleStep, StepInput};
pub use settle::DEFAULT_SETTLE_WINDOW_MS;

/// The registry's part for services: the runners of unsettled instances and what they use.
pub(super) struct Services {
    runners: DashMap<InstanceKey, Arc<Runner>>,
    host_ops: RwLock<Option<HostOps>>,
    window_ms: AtomicU64,
    /// XState major version per code hash (4 or 5), for the shape of owed error events.
    majors: DashMap<Arc<str>, u8>,
    /// Commits still to be answered with a conflict without writing (a test hook).
    forced_conflicts: AtomicU32,
}

impl Default for Services {
    fn default() -> Self {
        Self {
            runners: DashMap::new(),
            host_ops: RwLock::new(None),
            window_ms: AtomicU64::new(DEFAULT_SETTLE_WINDOW_MS),
            majors: DashMap::new(),
            forced_conflicts: AtomicU32::new(0),
        }
    }
}

impl Services {
    pub fn configure(&self, host_ops: HostOps, window_ms: u64) {
        *self.host_ops.write() = Some(host_ops);
        self.window_ms.store(window_ms.max(1), Ordering::Relaxed);
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.load(Ordering::Relaxed))
    }

    pub fn force_conflicts(&self, n: u32) {
        self.forced_conflicts.store(n, Ordering::SeqCst);
    }

    /// Whether the next commit must be answered with a conflict (and counts it down).
    pub fn take_forced_conflict(&self) -> bool {
        self.forced_conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The runner of `key` while it has not settled or been closed.
    pub fn live(&self, key: &InstanceKey) -> Option<Arc<Runner>> {
        self.runners
            .get(key)
            .map(|r| r.value().clone())
            .filter(|r| !r.st.lock().closed)
    }

    /// Pinned guests held by runners now.
    pub fn len(&self) -> usize {
        self.runners.len()
    }
}

/// What runs for one instance between a step with a token and the moment it settles.
pub(super) struct Runner {
    pin: tokio::sync::Mutex<Option<Pinned>>,
    st: Mutex<RunState>,
    settled_tx: watch::Sender<bool>,
    started: Instant,
    /// `created_at_ms` of the instance record this runner belongs to. A deleted instance's
    /// name may be used again; what this runner delivers goes only to its own incarnation.
    born_ms: i64,
}

#[derive(Default)]
struct RunState {
    /// Services running in the guest, as its last outbox said.
    running: Vec<String>,
    /// Host operations in flight, by operation id.
    ops: HashMap<u64, AbortHandle>,
    /// Events and sends waiting to be delivered, in order.
    queue: VecDeque<Work>,
    /// A task is delivering `queue`.
    delivering: bool,
    /// Steps that ran on the pinned guest and are not committed or discarded yet.
    stepping: usize,
    deadline: Option<Instant>,
    /// Settled or closed: the guest is (being) released and nothing more runs here.
    closed: bool,
    /// Closed because the instance was deleted: requests that waited for it answer with the
    /// state they committed, never with a later instance of the same name.
    deleted: bool,
}

enum Work {
    Event(Value),
    Send(SendTo),
}

impl Runner {
    fn new(pinned: Pinned, window: Duration, born_ms: i64) -> Arc<Self> {
        let (settled_tx, _) = watch::channel(false);
        Arc::new(Self {
            pin: tokio::sync::Mutex::new(Some(pinned)),
            st: Mutex::new(RunState {
                deadline: Some(Instant::now() + window),
                ..RunState::default()
            }),
            settled_tx,
            started: Instant::now(),
            born_ms,
        })
    }

    fn is_quiet(st: &RunState) -> bool {
        st.running.is_empty()
            && st.ops.is_empty()
            && st.queue.is_empty()
            && !st.delivering
            && st.stepping == 0
    }

    /// Moves the window's end to `window` from now (an event from outside arrived).
    fn extend(&self, window: Duration) {
        let mut st = self.st.lock();
        let end = Instant::now() + window;
        if st.deadline.is_none_or(|d| d < end) {
            st.deadline = Some(end);
        }
    }

    /// Waits until the runner settled or was closed; answers whether the instance was
    /// deleted meanwhile.
    pub async fn wait(&self) -> bool {
        let mut rx = self.settled_tx.subscribe();
        let _ = rx.wait_for(|done| *done).await;
        self.st.lock().deleted
    }

    /// Whether what this runner delivers may still be applied to `record`: the runner is
    /// open and `record` is the incarnation it was started for.
    fn owns(&self, record: &crate::store::InstanceRecord) -> bool {
        !self.st.lock().closed && record.created_at_ms == self.born_ms
    }
}
