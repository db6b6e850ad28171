//! Metrics of effects after commit: durable timers (armed, due lag, delivered, stale,
//! dropped) and messages between instances (delivered, failed attempts, dropped).

use ::metrics::{counter, describe_counter, describe_histogram, histogram};

pub const TIMERS_ARMED_TOTAL: &str = "statewire_timers_armed_total";
pub const TIMER_DUE_LAG_SECONDS: &str = "statewire_timer_due_lag_seconds";
pub const TIMERS_DELIVERED_TOTAL: &str = "statewire_timers_delivered_total";
pub const TIMERS_STALE_TOTAL: &str = "statewire_timers_stale_total";
pub const DELIVERY_FAILURES_TOTAL: &str = "statewire_effect_delivery_failures_total";
pub const DROPPED_TOTAL: &str = "statewire_effects_dropped_total";
pub const OUTBOX_DELIVERED_TOTAL: &str = "statewire_outbox_delivered_total";

pub const NAMES: &[&str] = &[
    TIMERS_ARMED_TOTAL,
    TIMER_DUE_LAG_SECONDS,
    TIMERS_DELIVERED_TOTAL,
    TIMERS_STALE_TOTAL,
    DELIVERY_FAILURES_TOTAL,
    DROPPED_TOTAL,
    OUTBOX_DELIVERED_TOTAL,
];

/// What is being delivered; the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A durable timer's event to its own instance.
    Timer,
    /// An event to another instance (or the parent).
    Send,
    /// The creation of a persistent child.
    Spawn,
}

impl Delivery {
    const ALL: [Delivery; 3] = [Delivery::Timer, Delivery::Send, Delivery::Spawn];

    fn label(self) -> &'static str {
        match self {
            Delivery::Timer => "timer",
            Delivery::Send => "send",
            Delivery::Spawn => "spawn",
        }
    }
}

/// Durable timers (delayed sends, `after`, `enqueue`) written by one commit.
pub fn armed(n: usize) {
    if n > 0 {
        counter!(TIMERS_ARMED_TOTAL).increment(n as u64);
    }
}

/// A timer's first delivery attempt began `lag_ms` after it was due.
pub fn due_lag(lag_ms: i64) {
    histogram!(TIMER_DUE_LAG_SECONDS).record(lag_ms.max(0) as f64 / 1000.0);
}

/// A timer's event made its transition.
pub fn delivered() {
    counter!(TIMERS_DELIVERED_TOTAL).increment(1);
}

/// A wake-up found its timer gone (delivered, cancelled or dropped already).
pub fn stale() {
    counter!(TIMERS_STALE_TOTAL).increment(1);
}

/// One delivery attempt failed and was counted.
pub fn attempt_failed(kind: Delivery) {
    counter!(DELIVERY_FAILURES_TOTAL, "kind" => kind.label()).increment(1);
}

/// A timer or message was given up after its last attempt.
pub fn dropped(kind: Delivery) {
    counter!(DROPPED_TOTAL, "kind" => kind.label()).increment(1);
}

/// A message reached its receiver (an event applied, or a child created or found).
pub fn outbox_delivered(kind: Delivery) {
    counter!(OUTBOX_DELIVERED_TOTAL, "kind" => kind.label()).increment(1);
}

pub(super) fn describe() {
    describe_counter!(
        TIMERS_ARMED_TOTAL,
        "durable timers written by commits (delayed sends, after, self-sends)"
    );
    describe_histogram!(
        TIMER_DUE_LAG_SECONDS,
        "from a timer's due time to its first delivery attempt (the shared seconds buckets)"
    );
    describe_counter!(
        TIMERS_DELIVERED_TOTAL,
        "timer events that made their transition"
    );
    describe_counter!(
        TIMERS_STALE_TOTAL,
        "timer wake-ups that found the timer already delivered, cancelled or dropped"
    );
    describe_counter!(
        DELIVERY_FAILURES_TOTAL,
        "failed delivery attempts of timers and messages, by kind"
    );
    describe_counter!(
        DROPPED_TOTAL,
        "timers and messages given up after their last attempt, by kind"
    );
    describe_counter!(
        OUTBOX_DELIVERED_TOTAL,
        "messages to other instances delivered, by kind"
    );

    counter!(TIMERS_ARMED_TOTAL).increment(0);
    counter!(TIMERS_DELIVERED_TOTAL).increment(0);
    counter!(TIMERS_STALE_TOTAL).increment(0);
    for kind in Delivery::ALL {
        counter!(DELIVERY_FAILURES_TOTAL, "kind" => kind.label()).increment(0);
        counter!(DROPPED_TOTAL, "kind" => kind.label()).increment(0);
    }
    for kind in [Delivery::Send, Delivery::Spawn] {
        counter!(OUTBOX_DELIVERED_TOTAL, "kind" => kind.label()).increment(0);
    }
}
