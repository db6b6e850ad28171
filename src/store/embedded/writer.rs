//! The one writer thread and its group commit.
//!
//! Every write is queued on one bounded channel. The thread takes the first queued request
//! (parking while the queue is empty), drains whatever else is already waiting (up to
//! [`MAX_BATCH_OPS`] ops or about [`MAX_BATCH_BYTES`]), applies all of them in one write
//! transaction with `Durability::Immediate`, commits once (one fsync), and only then answers
//! every caller. There is no linger timer: batches form while the previous commit is on disk,
//! so a lone writer waits for exactly one fsync.
//!
//! If a commit fails, every op of that batch is answered with `StoreError::Backend` and the
//! store is poisoned: after a failed fsync the file's state is uncertain (redb documents that a
//! failed commit may still have become durable), so the store refuses further writes until it
//! is reopened. Reads keep serving the last good commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};

use super::apply::{Op, Reply, Tables};
use crate::store::{CasOutcome, StoreError};

/// Requests that may wait for the writer before callers feel backpressure.
pub(super) const QUEUE_CAPACITY: usize = 4096;
/// Most ops in one write transaction.
pub(super) const MAX_BATCH_OPS: usize = 1024;
/// A batch stops taking ops once it holds about this many bytes.
pub(super) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One queued write and where its outcome goes.
pub(super) struct Request {
    pub op: Op,
    pub reply_tx: oneshot::Sender<Result<Reply, StoreError>>,
}

pub(super) enum Message {
    Write(Request),
    /// Commit what is queued before this, refuse what comes after, stop, then acknowledge.
    Shutdown(oneshot::Sender<()>),
}

/// State the writer shares with the store handle: counters, poison, fault injection.
#[derive(Default)]
pub(super) struct Shared {
    commits: AtomicU64,
    ops: AtomicU64,
    conflicts: AtomicU64,
    failed_batches: AtomicU64,
    largest_batch_ops: AtomicU64,
    /// Set once, by the first failed commit (or a panic of the writer); never cleared.
    poison: OnceLock<String>,
    fail_next_commit: AtomicBool,
}

/// Counters of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Durable write transactions committed.
    pub commits: u64,
    /// Ops answered from committed transactions (applied or conflicting).
    pub ops: u64,
    /// Compare-and-sets whose expectation did not hold.
    pub conflicts: u64,
    /// Batches answered with an error instead of being committed.
    pub failed_batches: u64,
    /// The most ops one commit carried.
    pub largest_batch_ops: u64,
    /// True once a failed commit has made the store refuse writes.
    pub poisoned: bool,
}

impl Shared {
    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            largest_batch_ops: self.largest_batch_ops.load(Ordering::Relaxed),
            poisoned: self.poison.get().is_some(),
        }
    }

    /// The error every write gets once the store is poisoned.
    pub(super) fn poisoned_error(&self) -> Option<StoreError> {
        self.poison.get().map(|cause| {
            StoreError::Backend(format!(
                "store refuses writes after a failed commit ({cause}); restart to recover"
            ))
        })
    }

    pub(super) fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }
}

/// Starts the writer thread.
pub(super) fn spawn(
    db: Arc<Database>,
    shared: Arc<Shared>,
) -> std::io::Result<(mpsc::Sender<Message>, JoinHandle<()>)> {
    let (requests_tx, requests_rx) = mpsc::channel(QUEUE_CAPACITY);
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || {
            let _guard = PoisonOnPanic(&shared);
            run(&db, &shared, requests_rx);
        })?;
    Ok((requests_tx, thread))
}

/// If the writer panics, callers waiting on it see their reply channel close (an unknown
/// outcome), and the store is poisoned so no later write is queued to nobody.
struct PoisonOnPanic<'a>(&'a Shared);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("store writer panicked; refusing further writes");
            let _ = self.0.poison.set("the writer thread panicked".to_owned());
        }
    }
}

fn run(db: &Database, shared: &Shared, mut requests_rx: mpsc::Receiver<Message>) {
    while let Some(first) = requests_rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut stop_ack = take(first, &mut batch, &mut batch_bytes);
        while stop_ack.is_none() && batch.len() < MAX_BATCH_OPS && batch_bytes < MAX_BATCH_BYTES {
            match requests_rx.try_recv() {
                Ok(msg) => stop_ack = take(msg, &mut batch, &mut batch_bytes),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(db, shared, batch);
        }
        if let Some(ack) = stop_ack {
            requests_rx.close();
            while let Ok(msg) = requests_rx.try_recv() {
                if let Message::Write(r) = msg {
                    let closed = StoreError::Unavailable("store is shut down".to_owned());
                    let _ = r.reply_tx.send(Err(closed));
                }
            }
            let _ = ack.send(());
            return;
        }
    }
}

/// Adds a write to the batch, or returns the acknowledgement of a shutdown.
fn take(
    msg: Message,
    batch: &mut Vec<Request>,
    batch_bytes: &mut usize,
) -> Option<oneshot::Sender<()>> {
    match msg {
        Message::Write(r) => {
            *batch_bytes += r.op.size_bytes();
            batch.push(r);
            None
        }
        Message::Shutdown(ack) => Some(ack),
    }
}

/// Why a batch was not committed; `poisons` when the file's state is now uncertain.
struct BatchFailure {
    cause: String,
    poisons: bool,
}

fn commit_batch(db: &Database, shared: &Shared, batch: Vec<Request>) {
    if let Some(refused) = shared.poisoned_error() {
        for r in batch {
            let _ = r.reply_tx.send(Err(refused.clone()));
        }
        return;
    }
    let started = Instant::now();
    let ops: Vec<&Op> = batch.iter().map(|r| &r.op).collect();
    match apply_batch(db, shared, &ops) {
        Ok(outcomes) => {
            let conflicts = outcomes
                .iter()
                .filter(|o| matches!(o, Ok(Reply::Cas(CasOutcome::Conflict { .. }))))
                .count() as u64;
            let n = batch.len() as u64;
            shared.commits.fetch_add(1, Ordering::Relaxed);
            shared.ops.fetch_add(n, Ordering::Relaxed);
            shared.conflicts.fetch_add(conflicts, Ordering::Relaxed);
            shared.largest_batch_ops.fetch_max(n, Ordering::Relaxed);
            tracing::debug!(
                ops = n,
                conflicts,
                commit_us = started.elapsed().as_micros() as u64,
                "store batch committed"
            );
            for (r, outcome) in batch.into_iter().zip(outcomes) {
                let _ = r.reply_tx.send(outcome);
            }
        }
        Err(failure) => {
            shared.failed_batches.fetch_add(1, Ordering::Relaxed);
            if failure.poisons {
                let _ = shared.poison.set(failure.cause.clone());
            }
            tracing::error!(
                ops = batch.len(),
                cause = %failure.cause,
                poisoned = failure.poisons,
                "store batch failed"
            );
            let err = StoreError::Backend(failure.cause);
            for r in batch {
                let _ = r.reply_tx.send(Err(err.clone()));
            }
        }
    }
}

/// Applies every op in one transaction and commits it durably; per-op outcomes on success.
fn apply_batch(
    db: &Database,
    shared: &Shared,
    ops: &[&Op],
) -> Result<Vec<Result<Reply, StoreError>>, BatchFailure> {
    let not_started = |what: &str, e: &dyn std::fmt::Display| BatchFailure {
        cause: format!("{what}: {e}"),
        poisons: false,
    };
    let mut txn = db
        .begin_write()
        .map_err(|e| not_started("begin write", &e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| not_started("set durability", &e))?;
    let applied = match Tables::open(&txn) {
        Ok(mut tables) => ops
            .iter()
            .map(|op| tables.apply(op))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("write: {e}")),
        Err(e) => Err(format!("open tables: {e}")),
    };
    let outcomes = match applied {
        Ok(outcomes) => outcomes,
        Err(cause) => {
            return Err(match txn.abort() {
                Ok(()) => BatchFailure {
                    cause,
                    poisons: false,
                },
                Err(e) => BatchFailure {
                    cause: format!("{cause}; abort: {e}"),
                    poisons: true,
                },
            });
        }
    };
    if shared.fail_next_commit.swap(false, Ordering::SeqCst) {
        let _ = txn.abort();
        return Err(BatchFailure {
            cause: "commit: injected fault".to_owned(),
            poisons: true,
        });
    }
    txn.commit().map_err(|e| BatchFailure {
        cause: format!("commit: {e}"),
        poisons: true,
    })?;
    Ok(outcomes)
}
