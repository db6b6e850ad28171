//! Prometheus metrics: typed helpers over the `metrics` facade, one file per subsystem.
//!
//! Code elsewhere never names a metric: it calls a helper here (`metrics::runtime::fault(…)`,
//! `metrics::store::batch_committed(…)`), so every name, label and bucket is decided in this
//! folder and listed in `docs/metrics.md`.
//!
//! Conventions:
//! - every name starts with `statewire_` and ends with its unit: `_seconds`, `_bytes`, `_ops`,
//!   or `_total` for counters; gauges of live things are plain counts and carry no suffix;
//! - label values come from small closed sets (enums here, route patterns, status codes); no
//!   instance name is ever a label, and machine names go through [`labels::machine`], which
//!   gives the first [`labels::MACHINE_LABELS_MAX`] distinct machines their own value and folds
//!   the rest into `(other)`;
//! - a live count (hot instances, guests, connections, subscriptions) is a gauge moved only by
//!   a [`LiveGauge`] guard, so it goes back down when the counted thing is dropped and cannot
//!   drift;
//! - each quantity is recorded once, at the place where it happens; the counters some modules
//!   keep for their own tests (`Runtime::stats()`, `EmbeddedStore::stats()`) are not read here.
//!
//! Metrics are per process: [`install`] puts one recorder in place for the whole process, and
//! every server started in that process (tests start many) records into it and renders all of
//! it. Until `install` runs, the helpers record into the facade's no-op recorder.

pub mod events;
mod exporter;
pub mod fanout;
pub mod fetch;
mod guard;
pub mod http;
pub mod labels;
pub mod runtime;
pub mod services;
pub mod session;
pub mod store;
pub mod timers;

pub use exporter::{install, Exporter, MetricsError, CONTENT_TYPE};
pub use guard::LiveGauge;

/// Every metric this build can export, for documentation checks and dashboards.
pub fn all_names() -> Vec<&'static str> {
    [
        events::NAMES,
        http::NAMES,
        session::NAMES,
        fanout::NAMES,
        runtime::NAMES,
        store::NAMES,
        fetch::NAMES,
        timers::NAMES,
        services::NAMES,
    ]
    .concat()
}

/// Registers the help text of every metric and creates the series whose label sets are known
/// in advance at zero, so dashboards show a flat line rather than no data before the first
/// occurrence.
fn describe_all() {
    events::describe();
    http::describe();
    session::describe();
    fanout::describe();
    runtime::describe();
    store::describe();
    fetch::describe();
    timers::describe();
    services::describe();
}

/// Bucket upper bounds for durations: 100 µs to 10 s, about three per decade. A guest call is
/// tens of microseconds to the deadline (10 s); an fsync is ~4 ms here.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket upper bounds for ops per durable commit, in powers of two up to the embedded store's
/// largest batch (1024 ops).
const OPS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
