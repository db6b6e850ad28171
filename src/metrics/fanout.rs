//! Metrics of the fan-out: subscriptions, updates built, frames pushed by encoding,
//! conflation, and diff subscribers that fell back to a full update.

use ::metrics::{counter, describe_counter, describe_gauge, gauge};

use super::LiveGauge;

pub const SUBSCRIPTIONS: &str = "statewire_subscriptions";
pub const UPDATES_PUBLISHED_TOTAL: &str = "statewire_updates_published_total";
pub const PUSHES_TOTAL: &str = "statewire_pushes_total";
pub const UPDATES_CONFLATED_TOTAL: &str = "statewire_updates_conflated_total";
pub const FULL_FALLBACKS_TOTAL: &str = "statewire_patch_full_fallbacks_total";

pub const NAMES: &[&str] = &[
    SUBSCRIPTIONS,
    UPDATES_PUBLISHED_TOTAL,
    PUSHES_TOTAL,
    UPDATES_CONFLATED_TOTAL,
    FULL_FALLBACKS_TOTAL,
];

/// Counts one subscription of a connection to an instance for as long as it lives.
pub fn subscription() -> LiveGauge {
    LiveGauge::hold(gauge!(SUBSCRIPTIONS))
}

/// A committed change was built into an update (once, whatever the number of subscribers).
pub fn published() {
    counter!(UPDATES_PUBLISHED_TOTAL).increment(1);
}

/// A subscriber's writer took `full` full `instance-update` frames and `patches` JSON Patch
/// frames to send.
pub fn pushed(full: usize, patches: usize) {
    if full > 0 {
        counter!(PUSHES_TOTAL, "encoding" => "full").increment(full as u64);
    }
    if patches > 0 {
        counter!(PUSHES_TOTAL, "encoding" => "patch").increment(patches as u64);
    }
}

/// An unsent update was replaced by a newer one because the subscriber had not taken it yet.
pub fn conflated() {
    counter!(UPDATES_CONFLATED_TOTAL).increment(1);
}

/// A diff subscriber got a full update because the patch history no longer reached back.
pub fn full_fallback() {
    counter!(FULL_FALLBACKS_TOTAL).increment(1);
}

pub(super) fn describe() {
    describe_gauge!(SUBSCRIPTIONS, "subscriptions of connections to instances");
    describe_counter!(
        UPDATES_PUBLISHED_TOTAL,
        "updates built from committed changes, once per change"
    );
    describe_counter!(
        PUSHES_TOTAL,
        "update frames taken for sending to subscribers, by encoding (full or patch)"
    );
    describe_counter!(
        UPDATES_CONFLATED_TOTAL,
        "unsent updates replaced by a newer one for a subscriber that had not taken them"
    );
    describe_counter!(
        FULL_FALLBACKS_TOTAL,
        "diff subscribers sent a full update because the patch history did not reach back"
    );
    gauge!(SUBSCRIPTIONS).increment(0.0);
    counter!(UPDATES_PUBLISHED_TOTAL).increment(0);
    counter!(PUSHES_TOTAL, "encoding" => "full").increment(0);
    counter!(PUSHES_TOTAL, "encoding" => "patch").increment(0);
    counter!(UPDATES_CONFLATED_TOTAL).increment(0);
    counter!(FULL_FALLBACKS_TOTAL).increment(0);
}
