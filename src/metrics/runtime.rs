//! Metrics of the machine runtime: guest calls, faults, the compiled-module cache, live and
//! pinned guests.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use super::LiveGauge;
use crate::runtime::CodeKind;

pub const CALL_DURATION_SECONDS: &str = "statewire_machine_call_duration_seconds";
pub const FAULTS_TOTAL: &str = "statewire_machine_faults_total";
pub const MODULE_CACHE_LOOKUPS_TOTAL: &str = "statewire_module_cache_lookups_total";
pub const GUESTS_LIVE: &str = "statewire_guests_live";
pub const GUESTS_PINNED: &str = "statewire_guests_pinned";
pub const CALLS_THROTTLED_TOTAL: &str = "statewire_machine_calls_throttled_total";

pub const NAMES: &[&str] = &[
    CALL_DURATION_SECONDS,
    FAULTS_TOTAL,
    MODULE_CACHE_LOOKUPS_TOTAL,
    GUESTS_LIVE,
    GUESTS_PINNED,
    CALLS_THROTTLED_TOTAL,
];

/// The operations a caller asks of a machine, as the `op` label spells them.
const CALLER_OPS: [&str; 9] = [
    "init",
    "transition",
    "allow_read",
    "allow_write",
    "run_effects",
    "complete_op",
    "stop_child",
    "discard",
    "running",
];

/// How a guest call failed inside the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Stopped at its wall-clock deadline.
    Deadline,
    /// Ran out of memory under the cap, cleanly or by trapping at it.
    OutOfMemory,
    /// Any other trap, or output that breaks the ABI.
    Trap,
}

impl Fault {
    const ALL: [Fault; 3] = [Fault::Deadline, Fault::OutOfMemory, Fault::Trap];

    fn label(self) -> &'static str {
        match self {
            Fault::Deadline => "deadline",
            Fault::OutOfMemory => "oom",
            Fault::Trap => "trap",
        }
    }
}

/// What became of a call of a penalized machine at the penalty box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Got a permit and was queued.
    Admitted,
    /// Found no permit within twice the call deadline and failed with `machine-busy`.
    Refused,
}

impl Throttled {
    const ALL: [Throttled; 2] = [Throttled::Admitted, Throttled::Refused];

    fn label(self) -> &'static str {
        match self {
            Throttled::Admitted => "admitted",
            Throttled::Refused => "refused",
        }
    }
}

/// Where the compiled-module cache found a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// Already compiled in this process.
    MemoryHit,
    /// Deserialized from the artifact cache on disk.
    DiskHit,
    /// Compiled with Cranelift.
    Miss,
}

impl CacheLookup {
    const ALL: [CacheLookup; 3] = [
        CacheLookup::MemoryHit,
        CacheLookup::DiskHit,
        CacheLookup::Miss,
    ];

    fn label(self) -> &'static str {
        match self {
            CacheLookup::MemoryHit => "hit_memory",
            CacheLookup::DiskHit => "hit_disk",
            CacheLookup::Miss => "miss",
        }
    }
}

fn kind_label(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::JsBundle => "js",
        CodeKind::RawWasm => "wasm",
    }
}

/// One guest call for a caller (`op` is `init`, `transition`, an authorizer, or an effect
/// operation on a pinned guest) took `elapsed` inside the guest, whatever its outcome.
/// Queueing for a worker and building a cold machine's template are not included.
pub fn call_finished(op: &'static str, kind: CodeKind, elapsed: Duration) {
    histogram!(CALL_DURATION_SECONDS, "op" => op, "kind" => kind_label(kind))
        .record(elapsed.as_secs_f64());
}

/// A guest call of a `kind` machine failed with `fault`.
pub fn fault(kind: CodeKind, fault: Fault) {
    counter!(FAULTS_TOTAL, "fault" => fault.label(), "kind" => kind_label(kind)).increment(1);
}

/// A call of a machine penalized for hitting its limits went through the penalty box.
pub fn call_throttled(outcome: Throttled) {
    counter!(CALLS_THROTTLED_TOTAL, "outcome" => outcome.label()).increment(1);
}

/// The compiled-module cache answered a lookup.
pub fn module_lookup(result: CacheLookup) {
    counter!(MODULE_CACHE_LOOKUPS_TOTAL, "result" => result.label()).increment(1);
}

/// Counts one guest (warm in a pool or serving a call) until the guard is dropped.
pub fn live_guest() -> LiveGauge {
    LiveGauge::hold(gauge!(GUESTS_LIVE))
}

/// Counts one guest pinned to a machine instance until the guard is dropped.
pub fn pinned_guest() -> LiveGauge {
    LiveGauge::hold(gauge!(GUESTS_PINNED))
}

pub(super) fn describe() {
    describe_histogram!(
        CALL_DURATION_SECONDS,
        "time inside the guest for one machine call, by operation and code kind"
    );
    describe_counter!(
        FAULTS_TOTAL,
        "machine calls that failed inside the guest: deadline, out of memory, or trap"
    );
    describe_counter!(
        MODULE_CACHE_LOOKUPS_TOTAL,
        "compiled-module lookups: found in memory, loaded from disk, or compiled"
    );
    describe_counter!(
        CALLS_THROTTLED_TOTAL,
        "calls of machines penalized for hitting their limits, admitted to fewer workers or refused"
    );
    describe_gauge!(
        GUESTS_LIVE,
        "guest instances alive now, idle or serving a call"
    );
    describe_gauge!(
        GUESTS_PINNED,
        "guest instances pinned to a machine instance while its effects run"
    );

    for kind in [CodeKind::JsBundle, CodeKind::RawWasm] {
        for op in CALLER_OPS {
            let _ = histogram!(CALL_DURATION_SECONDS, "op" => op, "kind" => kind_label(kind));
        }
        for f in Fault::ALL {
            counter!(FAULTS_TOTAL, "fault" => f.label(), "kind" => kind_label(kind)).increment(0);
        }
    }
    for result in CacheLookup::ALL {
        counter!(MODULE_CACHE_LOOKUPS_TOTAL, "result" => result.label()).increment(0);
    }
    for outcome in Throttled::ALL {
        counter!(CALLS_THROTTLED_TOTAL, "outcome" => outcome.label()).increment(0);
    }
    gauge!(GUESTS_LIVE).increment(0.0);
    gauge!(GUESTS_PINNED).increment(0.0);
}
