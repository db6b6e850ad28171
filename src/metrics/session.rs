//! Metrics of the WebSocket sessions: open connections, refused upgrades, frames written, and
//! the closes the server initiates.

use ::metrics::{counter, describe_counter, describe_gauge, gauge};

use super::LiveGauge;
use crate::session::CloseReason;

pub const CONNECTIONS: &str = "statewire_ws_connections";
pub const UPGRADES_REFUSED_TOTAL: &str = "statewire_ws_upgrades_refused_total";
pub const FRAMES_SENT_TOTAL: &str = "statewire_ws_frames_sent_total";
pub const CLOSES_TOTAL: &str = "statewire_ws_closes_total";

pub const NAMES: &[&str] = &[
    CONNECTIONS,
    UPGRADES_REFUSED_TOTAL,
    FRAMES_SENT_TOTAL,
    CLOSES_TOTAL,
];

const REASONS: [CloseReason; 8] = [
    CloseReason::ShuttingDown,
    CloseReason::Protocol,
    CloseReason::Binary,
    CloseReason::TooBig,
    CloseReason::Internal,
    CloseReason::Idle,
    CloseReason::TokenExpired,
    CloseReason::SlowConsumer,
];

fn reason_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::ShuttingDown => "shutting_down",
        CloseReason::Protocol => "protocol",
        CloseReason::Binary => "binary",
        CloseReason::TooBig => "too_big",
        CloseReason::Internal => "internal",
        CloseReason::Idle => "idle",
        CloseReason::TokenExpired => "token_expired",
        CloseReason::SlowConsumer => "slow_consumer",
    }
}

/// Counts one WebSocket connection, from the accepted upgrade until it ends.
pub fn connection() -> LiveGauge {
    LiveGauge::hold(gauge!(CONNECTIONS))
}

/// An upgrade to `/rt` was refused (bad handshake, bad or expiring token, shutting down).
pub fn upgrade_refused() {
    counter!(UPGRADES_REFUSED_TOTAL).increment(1);
}

/// `n` frames (updates, replies, errors, pongs) were written to a client.
pub fn frames_sent(n: usize) {
    counter!(FRAMES_SENT_TOTAL).increment(n as u64);
}

/// The server closed a connection for `reason`.
pub fn closed(reason: CloseReason) {
    counter!(CLOSES_TOTAL, "reason" => reason_label(reason)).increment(1);
}

pub(super) fn describe() {
    describe_gauge!(CONNECTIONS, "open WebSocket connections");
    describe_counter!(UPGRADES_REFUSED_TOTAL, "WebSocket upgrades refused");
    describe_counter!(FRAMES_SENT_TOTAL, "WebSocket frames written to clients");
    describe_counter!(
        CLOSES_TOTAL,
        "WebSocket connections closed by the server, by reason"
    );
    gauge!(CONNECTIONS).increment(0.0);
    counter!(UPGRADES_REFUSED_TOTAL).increment(0);
    counter!(FRAMES_SENT_TOTAL).increment(0);
    for reason in REASONS {
        counter!(CLOSES_TOTAL, "reason" => reason_label(reason)).increment(0);
    }
}
