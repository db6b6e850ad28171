//! Metrics of the registry: events and creations by outcome, event latency, authorizer
//! denials, conflict retries, and the hot-instance map.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use super::{labels, LiveGauge};
use crate::ids::MachineName;
use crate::registry::RegistryError;
use crate::runtime::RuntimeError;

pub const EVENTS_TOTAL: &str = "statewire_events_total";
pub const EVENT_DURATION_SECONDS: &str = "statewire_event_duration_seconds";
pub const CREATIONS_TOTAL: &str = "statewire_instance_creations_total";
pub const CONFLICT_RETRIES_TOTAL: &str = "statewire_conflict_retries_total";
pub const AUTHORIZER_DENIALS_TOTAL: &str = "statewire_authorizer_denials_total";
pub const INSTANCES_HOT: &str = "statewire_instances_hot";
pub const LOADS_TOTAL: &str = "statewire_instance_loads_total";
pub const EVICTIONS_TOTAL: &str = "statewire_instance_evictions_total";

pub const NAMES: &[&str] = &[
    EVENTS_TOTAL,
    EVENT_DURATION_SECONDS,
    CREATIONS_TOTAL,
    CONFLICT_RETRIES_TOTAL,
    AUTHORIZER_DENIALS_TOTAL,
    INSTANCES_HOT,
    LOADS_TOTAL,
    EVICTIONS_TOTAL,
];

/// How an event (or an instance creation) ended; the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and durable.
    Accepted,
    /// `allowWrite` said no.
    Rejected,
    /// Machine code threw, or refused the input (bad event, context too large).
    MachineError,
    /// The machine call ran past its deadline.
    Timeout,
    /// The guest ran out of memory or trapped.
    Fault,
    /// The instance (or its machine version) does not exist.
    NotFound,
    /// A creation found the instance already there.
    AlreadyExists,
    /// The instance is paused and takes no events.
    Paused,
    /// Every compare-and-set attempt met a newer snapshot written elsewhere.
    Contended,
    /// The store failed or could not say whether the write was applied.
    StoreError,
    /// The server is shutting down.
    Unavailable,
    /// Anything else (a missing bundle, an invalid machine module, a runtime failure).
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::MachineError => "machine_error",
            Outcome::Timeout => "timeout",
            Outcome::Fault => "fault",
            Outcome::NotFound => "not_found",
            Outcome::AlreadyExists => "already_exists",
            Outcome::Paused => "paused",
            Outcome::Contended => "contended",
            Outcome::StoreError => "store_error",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }
}

/// Which authorizer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `allowRead`: a read or a subscription.
    Read,
    /// `allowWrite`: an event or an initialization.
    Write,
}

/// How a registry write ended.
pub fn outcome<T>(result: &Result<T, RegistryError>) -> Outcome {
    use RegistryError as E;
    use RuntimeError as R;
    match result {
        Ok(_) => Outcome::Accepted,
        Err(E::Rejected) => Outcome::Rejected,
        Err(E::InstanceNotFound(_) | E::VersionNotFound { .. }) => Outcome::NotFound,
        Err(E::AlreadyExists(_)) => Outcome::AlreadyExists,
        Err(E::Paused(_)) => Outcome::Paused,
        Err(E::Contended { .. }) => Outcome::Contended,
        Err(E::Store(_)) => Outcome::StoreError,
        Err(E::ShuttingDown) => Outcome::Unavailable,
        Err(E::Runtime(R::MachineThrew(_) | R::BadInput(_) | R::ContextTooLarge { .. })) => {
            Outcome::MachineError
        }
        Err(E::Runtime(R::Deadline(_))) => Outcome::Timeout,
        Err(E::Runtime(R::OutOfMemory | R::Trap(_) | R::GuestLost(_))) => Outcome::Fault,
        Err(E::Runtime(R::TooManyPinned { .. } | R::Throttled)) => Outcome::Unavailable,
        Err(E::Runtime(R::InvalidBundle(_) | R::BundleTooLarge { .. } | R::Internal(_))) => {
            Outcome::Error
        }
        Err(E::MissingCode(_) | E::TaskFailed(_)) => Outcome::Error,
    }
}

/// An event sent to an instance of `machine` was answered with `result`, `elapsed` after the
/// registry took it (queueing behind earlier events of the instance included). A refusal by
/// `allowWrite` also counts as an authorizer denial.
pub fn event_finished<T>(
    machine: &MachineName,
    result: &Result<T, RegistryError>,
    elapsed: Duration,
) {
    let outcome = outcome(result);
    if outcome == Outcome::Rejected {
        authorizer_denied(machine, Access::Write);
    }
    let outcome = outcome.label();
    counter!(EVENTS_TOTAL, "machine" => labels::machine(machine), "outcome" => outcome)
        .increment(1);
    histogram!(EVENT_DURATION_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// An instance creation of `machine` was answered with `result`. A refusal by `allowWrite`
/// also counts as an authorizer denial.
pub fn creation_finished<T>(machine: &MachineName, result: &Result<T, RegistryError>) {
    let outcome = outcome(result);
    if outcome == Outcome::Rejected {
        authorizer_denied(machine, Access::Write);
    }
    counter!(CREATIONS_TOTAL, "machine" => labels::machine(machine), "outcome" => outcome.label())
        .increment(1);
}

/// An instance write met a newer snapshot at its compare-and-set (written by another node)
/// and is run again on it, or gives up after its last attempt.
pub fn conflict_met() {
    counter!(CONFLICT_RETRIES_TOTAL).increment(1);
}

/// A machine's authorizer refused a read or a write.
pub fn authorizer_denied(machine: &MachineName, access: Access) {
    let op = match access {
        Access::Read => "read",
        Access::Write => "write",
    };
    counter!(AUTHORIZER_DENIALS_TOTAL, "machine" => labels::machine(machine), "op" => op)
        .increment(1);
}

/// Counts one entry of the hot-instance map for as long as the guard lives.
pub fn hot_instance() -> LiveGauge {
    LiveGauge::hold(gauge!(INSTANCES_HOT))
}

/// An instance was loaded from the store into the hot map.
pub fn instance_loaded() {
    counter!(LOADS_TOTAL).increment(1);
}

/// `n` idle or least recently used instances were evicted from the hot map.
pub fn instances_evicted(n: usize) {
    counter!(EVICTIONS_TOTAL).increment(n as u64);
}

pub(super) fn describe() {
    describe_counter!(
        EVENTS_TOTAL,
        "events sent to instances, by machine and outcome"
    );
    describe_histogram!(
        EVENT_DURATION_SECONDS,
        "from the registry taking an event to its answer, by outcome"
    );
    describe_counter!(
        CREATIONS_TOTAL,
        "instance creations, by machine and outcome"
    );
    describe_counter!(
        CONFLICT_RETRIES_TOTAL,
        "instance writes that met a newer snapshot at commit and ran again (or gave up)"
    );
    describe_counter!(
        AUTHORIZER_DENIALS_TOTAL,
        "reads and writes refused by a machine's allowRead or allowWrite"
    );
    describe_gauge!(INSTANCES_HOT, "instances held in the hot-instance map now");
    describe_counter!(
        LOADS_TOTAL,
        "instances loaded from the store into the hot map"
    );
    describe_counter!(EVICTIONS_TOTAL, "instances evicted from the hot map");

    counter!(CONFLICT_RETRIES_TOTAL).increment(0);
    counter!(LOADS_TOTAL).increment(0);
    counter!(EVICTIONS_TOTAL).increment(0);
    gauge!(INSTANCES_HOT).increment(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn of(error: RegistryError) -> Outcome {
        outcome::<()>(&Err(error))
    }

    #[test]
    fn registry_results_map_to_their_outcomes() {
        assert_eq!(outcome(&Ok::<(), RegistryError>(())), Outcome::Accepted);
        assert_eq!(of(RegistryError::Rejected), Outcome::Rejected);
        assert_eq!(of(RegistryError::ShuttingDown), Outcome::Unavailable);
        let deadline = RuntimeError::Deadline(Duration::from_secs(1));
        assert_eq!(of(RegistryError::Runtime(deadline)), Outcome::Timeout);
        let trap = RuntimeError::Trap("unreachable".into());
        assert_eq!(of(RegistryError::Runtime(trap)), Outcome::Fault);
        let threw = RuntimeError::MachineThrew("boom".into());
        assert_eq!(of(RegistryError::Runtime(threw)), Outcome::MachineError);
        assert_eq!(
            of(RegistryError::Store(StoreError::Unknown)),
            Outcome::StoreError
        );
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let all = [
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::MachineError,
            Outcome::Timeout,
            Outcome::Fault,
            Outcome::NotFound,
            Outcome::AlreadyExists,
            Outcome::Paused,
            Outcome::Contended,
            Outcome::StoreError,
            Outcome::Unavailable,
            Outcome::Error,
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
