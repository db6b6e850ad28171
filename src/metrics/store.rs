//! Metrics of the stores: durable commits, their size, compare-and-set conflicts, failures.

use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{counter, describe_counter, describe_histogram, histogram};

use crate::store::{CasOutcome, StoreError};

pub const COMMIT_DURATION_SECONDS: &str = "statewire_store_commit_duration_seconds";
pub const BATCH_OPS: &str = "statewire_store_batch_ops";
pub const CAS_CONFLICTS_TOTAL: &str = "statewire_store_cas_conflicts_total";
pub const COMMIT_FAILURES_TOTAL: &str = "statewire_store_commit_failures_total";

pub const NAMES: &[&str] = &[
    COMMIT_DURATION_SECONDS,
    BATCH_OPS,
    CAS_CONFLICTS_TOTAL,
    COMMIT_FAILURES_TOTAL,
];

/// Which store recorded; the `backend` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Embedded,
    Scylla,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Memory, Backend::Embedded, Backend::Scylla];

    fn label(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Embedded => "embedded",
            Backend::Scylla => "scylla",
        }
    }
}

/// One durable write transaction carrying `ops` writes, `conflicts` of which found the
/// instance at another version, took `elapsed` (for the embedded store: apply, commit and
/// fsync of a whole batch).
pub fn batch_committed(backend: Backend, elapsed: Duration, ops: usize, conflicts: u64) {
    let b = backend.label();
    histogram!(COMMIT_DURATION_SECONDS, "backend" => b).record(elapsed.as_secs_f64());
    histogram!(BATCH_OPS, "backend" => b).record(ops as f64);
    if conflicts > 0 {
        counter!(CAS_CONFLICTS_TOTAL, "backend" => b).increment(conflicts);
    }
}

/// A durable write transaction failed; every write in it was answered with an error.
pub fn commit_failed(backend: Backend) {
    counter!(COMMIT_FAILURES_TOTAL, "backend" => backend.label()).increment(1);
}

/// A compare-and-set found the instance at another version, outside of any batch.
pub fn conflict(backend: Backend) {
    counter!(CAS_CONFLICTS_TOTAL, "backend" => backend.label()).increment(1);
}

/// Runs one instance commit of a backend that commits each write on its own (no batching),
/// and records its duration, a conflict or a failure.
pub async fn timed_commit(
    backend: Backend,
    commit: impl Future<Output = Result<CasOutcome, StoreError>>,
) -> Result<CasOutcome, StoreError> {
    let started = Instant::now();
    let outcome = commit.await;
    let b = backend.label();
    histogram!(COMMIT_DURATION_SECONDS, "backend" => b).record(started.elapsed().as_secs_f64());
    match &outcome {
        Ok(CasOutcome::Applied { .. }) => {}
        Ok(CasOutcome::Conflict { .. }) => conflict(backend),
        Err(_) => commit_failed(backend),
    }
    outcome
}

pub(super) fn describe() {
    describe_histogram!(
        COMMIT_DURATION_SECONDS,
        "time of one durable write transaction (a whole batch for the embedded store)"
    );
    describe_histogram!(
        BATCH_OPS,
        "writes carried by one durable transaction of the embedded store (group commit)"
    );
    describe_counter!(
        CAS_CONFLICTS_TOTAL,
        "compare-and-sets that found the instance at another version"
    );
    describe_counter!(
        COMMIT_FAILURES_TOTAL,
        "durable write transactions that failed; their writes were answered with an error"
    );
    for backend in Backend::ALL {
        let b = backend.label();
        counter!(CAS_CONFLICTS_TOTAL, "backend" => b).increment(0);
        counter!(COMMIT_FAILURES_TOTAL, "backend" => b).increment(0);
    }
}
