//! Keeps one misbehaving machine from occupying every worker.
//!
//! A machine whose call ran into its deadline or its memory cap is *penalized* for
//! [`PENALTY`]. While penalized, each of its calls must first take a permit from one shared
//! penalty box of `workers - 1` permits (at least 1), and holds it until a worker has finished
//! the call. So all penalized machines together use at most `workers - 1` workers, and at least
//! one worker stays free for every other machine (with a single worker nothing can be kept
//! free, and penalized calls run one at a time). Healthy machines take no permit and keep full
//! parallelism.
//!
//! Waiting happens on the caller's task, before the job is queued, never on a worker thread.
//! A call that cannot get a permit before its deadline for waiting ([`MAX_WAIT_DEADLINES`]
//! call deadlines, counted from when the call was made: enough to outlast one call ahead of
//! it that runs to its deadline) fails with [`RuntimeError::Throttled`], and nothing of it ran.
//!
//! Calls already queued when their machine becomes penalized carry no permit; the worker
//! that dequeues one hands it back unrun, and the caller queues it again through the penalty
//! box. Calls on pinned guests never come here: they go straight to their worker's own queue,
//! so a pinned instance never waits behind a permit held by itself.
//!
//! Permits are owned guards that travel with the job: they return when the job is dropped,
//! whether the call answered, failed, panicked, or its caller went away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::RuntimeError;
use crate::metrics::runtime as metrics;

/// How long a machine stays penalized after its last call that hit the deadline or the
/// memory cap.
pub const PENALTY: Duration = Duration::from_secs(60);

/// How many call deadlines a call of a penalized machine may wait for a permit.
pub const MAX_WAIT_DEADLINES: u32 = 2;

/// Penalized machines remembered before expired entries are swept.
const SWEEP_ABOVE: usize = 64;

pub struct Throttle {
    penalty: Duration,
    /// Code hash → when its penalty ends.
    penalized: Mutex<HashMap<Arc<str>, Instant>>,
    /// Whether `penalized` may hold an entry; written under its lock. Every call asks twice
    /// (on admission and on its worker), and almost always nothing is penalized: this answers
    /// those without the lock, the hash lookup or reading the clock.
    any_penalized: AtomicBool,
    /// Workers that penalized machines may use at once.
    penalty_box: Arc<Semaphore>,
}

/// The right to queue one call: empty for a healthy machine, a penalty-box permit for a
/// penalized one. Dropping it gives the permit back.
#[derive(Debug, Default)]
pub struct Admission(Option<OwnedSemaphorePermit>);

impl Admission {
    /// Whether the call went through the penalty box.
    pub fn is_limited(&self) -> bool {
        self.0.is_some()
    }
}

impl Throttle {
    pub fn new(workers: usize, penalty: Duration) -> Self {
        Self {
            penalty,
            penalized: Mutex::new(HashMap::new()),
            any_penalized: AtomicBool::new(false),
            penalty_box: Arc::new(Semaphore::new(box_size(workers))),
        }
    }

    /// Marks `machine` as misbehaving from now until the penalty ends.
    pub fn penalize(&self, machine: &Arc<str>) {
        let now = Instant::now();
        let mut penalized = self.penalized.lock();
        if penalized.len() >= SWEEP_ABOVE {
            penalized.retain(|_, until| *until > now);
        }
        let previous = penalized.insert(machine.clone(), now + self.penalty);
        self.any_penalized.store(true, Ordering::Release);
        if !matches!(previous, Some(until) if until > now) {
            tracing::warn!(
                machine = %super::pool::machine_label(machine),
                penalty_s = self.penalty.as_secs_f64(),
                "machine penalized: its calls are limited to fewer workers"
            );
        }
    }

    pub fn is_penalized(&self, machine: &str) -> bool {
        if !self.any_penalized.load(Ordering::Acquire) {
            return false;
        }
        let mut penalized = self.penalized.lock();
        match penalized.get(machine) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                penalized.remove(machine);
                if penalized.is_empty() {
                    self.any_penalized.store(false, Ordering::Release);
                }
                false
            }
            None => false,
        }
    }

    /// Admits one call of `machine`: at once when it is healthy, else once the penalty box has
    /// a permit, waiting at most until `wait_until`.
    pub async fn admit(
        &self,
        machine: &str,
        wait_until: tokio::time::Instant,
    ) -> Result<Admission, RuntimeError> {
        if !self.is_penalized(machine) {
            return Ok(Admission(None));
        }
        let permit = self.penalty_box.clone().acquire_owned();
        match tokio::time::timeout_at(wait_until, permit).await {
            Ok(Ok(permit)) => {
                metrics::call_throttled(metrics::Throttled::Admitted);
                Ok(Admission(Some(permit)))
            }
            Ok(Err(_closed)) => Err(RuntimeError::Internal("the penalty box was closed".into())),
            Err(_elapsed) => {
                metrics::call_throttled(metrics::Throttled::Refused);
                Err(RuntimeError::Throttled)
            }
        }
    }

    /// Permits of the penalty box not held now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.penalty_box.available_permits()
    }
}

/// `workers - 1`, so that one worker stays free, but at least 1.
fn box_size(workers: usize) -> usize {
    workers.saturating_sub(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    fn hash(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn the_box_leaves_one_worker_free() {
        assert_eq!(box_size(1), 1);
        assert_eq!(box_size(2), 1);
        assert_eq!(box_size(8), 7);
    }

    #[tokio::test]
    async fn healthy_machines_take_no_permit() {
        let t = Throttle::new(2, PENALTY);
        let held: Vec<_> = futures_admit(&t, "a", 10).await;
        assert!(held.iter().all(|a| !a.is_limited()));
        assert_eq!(t.free(), 1);
    }

    async fn futures_admit(t: &Throttle, machine: &str, n: usize) -> Vec<Admission> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(t.admit(machine, soon(10)).await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_penalized_machine_waits_for_the_box_and_is_refused_past_its_limit() {
        let t = Throttle::new(2, PENALTY);
        t.penalize(&hash("bad"));
        let first = t.admit("bad", soon(10)).await.unwrap();
        assert!(first.is_limited());
        assert_eq!(t.free(), 0);
        let refused = t.admit("bad", soon(20)).await;
        assert!(
            matches!(refused, Err(RuntimeError::Throttled)),
            "{refused:?}"
        );
        assert!(!t.admit("good", soon(10)).await.unwrap().is_limited());
        drop(first);
        assert!(t.admit("bad", soon(10)).await.unwrap().is_limited());
        assert_eq!(
            t.free(),
            1,
            "the permit returned when the admission dropped"
        );
    }

    #[tokio::test]
    async fn a_waiter_gets_the_permit_when_it_returns() {
        let t = Arc::new(Throttle::new(2, PENALTY));
        t.penalize(&hash("bad"));
        let first = t.admit("bad", soon(10)).await.unwrap();
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { t.admit("bad", soon(5_000)).await.map(|a| a.is_limited()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiter.await.unwrap().unwrap());
        assert_eq!(t.free(), 1);
    }

    #[tokio::test]
    async fn permits_return_after_cancellation_errors_and_panics() {
        let t = Arc::new(Throttle::new(3, PENALTY));
        t.penalize(&hash("bad"));
        // An admitted call whose caller went away.
        let task = tokio::spawn({
            let t = t.clone();
            async move {
                let _held = t.admit("bad", soon(10)).await.unwrap();
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(t.free(), 1);
        task.abort();
        let _ = task.await;
        assert_eq!(t.free(), 2);
        // A waiter cancelled while it waited holds nothing.
        let a = t.admit("bad", soon(10)).await.unwrap();
        let b = t.admit("bad", soon(10)).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(20), t.admit("bad", soon(5_000)));
        assert!(waiting.await.is_err());
        drop((a, b));
        assert_eq!(t.free(), 2);
        // A call that failed, and one that panicked, with the permit in hand.
        let failed: Result<(), Admission> = Err(t.admit("bad", soon(10)).await.unwrap());
        drop(failed);
        let held = t.admit("bad", soon(10)).await.unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = held;
            panic!("host bug");
        }));
        assert!(panicked.is_err());
        assert_eq!(t.free(), 2, "no permit drifted");
    }

    #[tokio::test]
    async fn the_penalty_ends() {
        let t = Throttle::new(2, Duration::from_millis(30));
        t.penalize(&hash("bad"));
        assert!(t.is_penalized("bad"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!t.is_penalized("bad"));
        let _first = t.admit("bad", soon(10)).await.unwrap();
        assert!(!t.admit("bad", soon(10)).await.unwrap().is_limited());
    }

    #[test]
    fn expired_penalties_are_swept() {
        let t = Throttle::new(2, Duration::ZERO);
        for i in 0..(SWEEP_ABOVE * 3) {
            t.penalize(&hash(&format!("m{i}")));
        }
        assert!(t.penalized.lock().len() <= SWEEP_ABOVE);
    }
}
