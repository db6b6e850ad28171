//! Metrics of invoked services: started, done, failed, interrupted; settle windows that
//! closed before their instance settled, and how long instances took to settle.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_histogram, histogram};

pub const SERVICES_TOTAL: &str = "statewire_services_total";
pub const SETTLE_WINDOWS_CLOSED_TOTAL: &str = "statewire_settle_windows_closed_total";
pub const SETTLE_SECONDS: &str = "statewire_settle_seconds";

pub const NAMES: &[&str] = &[SERVICES_TOTAL, SETTLE_WINDOWS_CLOSED_TOTAL, SETTLE_SECONDS];

const OUTCOMES: [&str; 4] = ["started", "done", "error", "interrupted"];

fn outcome(label: &'static str, n: usize) {
    if n > 0 {
        counter!(SERVICES_TOTAL, "outcome" => label).increment(n as u64);
    }
}

/// Services whose start was committed and handed to the module.
pub fn started(n: usize) {
    outcome("started", n);
}

/// A service's done event came out of the module.
pub fn done() {
    outcome("done", 1);
}

/// A service's error event came out of the module (a rejection, a refused fetch).
pub fn failed() {
    outcome("error", 1);
}

/// Services stopped by the settle window, or cut off by a lost guest or a restart.
pub fn interrupted(n: usize) {
    outcome("interrupted", n);
}

/// A settle window closed while services still ran.
pub fn window_closed() {
    counter!(SETTLE_WINDOWS_CLOSED_TOTAL).increment(1);
}

/// From the first step that pinned a guest to the instance settling (or its window closing).
pub fn settled(elapsed: Duration) {
    histogram!(SETTLE_SECONDS).record(elapsed.as_secs_f64());
}

pub(super) fn describe() {
    describe_counter!(
        SERVICES_TOTAL,
        "invoked services by outcome: started, done, error, interrupted"
    );
    describe_counter!(
        SETTLE_WINDOWS_CLOSED_TOTAL,
        "settle windows that closed before their instance settled"
    );
    describe_histogram!(
        SETTLE_SECONDS,
        "from a step that started module effects to its instance settling (the shared seconds buckets)"
    );
    for label in OUTCOMES {
        counter!(SERVICES_TOTAL, "outcome" => label).increment(0);
    }
    counter!(SETTLE_WINDOWS_CLOSED_TOTAL).increment(0);
}
