//! The guard behind every live-count gauge.

use std::fmt;

/// One unit of a live-count gauge, held for exactly as long as the thing it counts.
///
/// Creating it adds one to the gauge; dropping it takes one away. The guard keeps the gauge
/// handle it incremented, so the decrement reaches the same series even if the recorder was
/// installed in between (a guard made before [`super::install`] counts into the no-op
/// recorder both ways).
#[must_use = "the gauge goes back down as soon as the guard is dropped"]
pub struct LiveGauge(::metrics::Gauge);

impl LiveGauge {
    pub(super) fn hold(gauge: ::metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for LiveGauge {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl fmt::Debug for LiveGauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiveGauge")
    }
}
