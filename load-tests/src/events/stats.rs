//! What the senders count while a run goes on: totals shared with the progress line, and each
//! sender's own tally of the measured window, merged at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Totals over the whole run, warm-up included, read once a second for the progress line.
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
}

/// The run's clock: warm-up from `start`, then the measured window up to `end`.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    pub fn new(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now();
        Window {
            start,
            measure_from: start + warmup,
            end: start + warmup + duration,
        }
    }

    pub fn measures(&self, at: Instant) -> bool {
        at >= self.measure_from && at <= self.end
    }
}

/// One event sent during the measured window whose commit subscribers should see.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub instance: usize,
    pub ts_ms: u64,
    /// When it was sent, µs since the epoch.
    pub sent_us: u64,
}

/// What one sender saw.
#[derive(Default)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    /// Acknowledged events whose reply came inside the measured window.
    pub ok_in_window: u64,
    /// Event → reply of those, in ms (from when the event was due, in an open loop).
    pub latencies_ms: Vec<f64>,
    pub errors: BTreeMap<String, u64>,
    /// Kept only when there are subscribers to compare against.
    pub committed: Vec<Committed>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.ok_in_window += other.ok_in_window;
        self.latencies_ms.extend(other.latencies_ms);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.committed.extend(other.committed);
    }
}

/// Prints one line a second until `window.end`: elapsed time, totals and the rate of
/// acknowledged events over the last second.
pub async fn progress(live: &Live, window: Window) {
    let mut ticks = tokio::time::interval_at(
        window.start + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_ok = 0;
    loop {
        let now = ticks.tick().await;
        if now > window.end + Duration::from_millis(500) {
            return;
        }
        let ok = live.ok.load(Ordering::Relaxed);
        let phase = if now <= window.measure_from {
            " (warm-up)"
        } else {
            ""
        };
        println!(
            "{:>4.0} s  sent {:>9}  ok {:>9}  errors {:>6}  rate {:>8}/s{phase}",
            (now - window.start).as_secs_f64(),
            live.sent.load(Ordering::Relaxed),
            ok,
            live.errors.load(Ordering::Relaxed),
            ok - last_ok,
        );
        last_ok = ok;
    }
}
