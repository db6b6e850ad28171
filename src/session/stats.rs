//! Counters of the real-time sessions, and the live-connection count held by RAII guards.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::close::CloseReason;

/// A snapshot of the sessions' counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// Open WebSocket connections now.
    pub connections: usize,
    /// Upgrades refused (bad handshake, bad or expiring token, shutting down).
    pub refused_upgrades: u64,
    /// Frames written to clients.
    pub frames_sent: u64,
    pub closed_slow_consumer: u64,
    pub closed_token_expired: u64,
    pub closed_idle: u64,
    pub closed_shutting_down: u64,
    /// Closed for a protocol violation, a binary or oversized message.
    pub closed_bad_input: u64,
}

#[derive(Debug)]
pub(super) struct Counters {
    live_tx: watch::Sender<usize>,
    refused: AtomicU64,
    frames: AtomicU64,
    slow: AtomicU64,
    expired: AtomicU64,
    idle: AtomicU64,
    shutdown: AtomicU64,
    bad_input: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            live_tx: watch::channel(0).0,
            refused: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            shutdown: AtomicU64::new(0),
            bad_input: AtomicU64::new(0),
        }
    }
}

/// Counts one open connection for as long as it lives; the count cannot drift.
pub(super) struct LiveGuard<'a>(&'a Counters);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.live_tx.send_modify(|n| *n -= 1);
    }
}

impl Counters {
    pub fn live(&self) -> LiveGuard<'_> {
        self.live_tx.send_modify(|n| *n += 1);
        LiveGuard(self)
    }

    /// Resolves once no connection is open.
    pub async fn none_live(&self) {
        let mut live_rx = self.live_tx.subscribe();
        let _ = live_rx.wait_for(|n| *n == 0).await;
    }

    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn frames_sent(&self, n: usize) {
        self.frames.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn closed(&self, why: CloseReason) {
        let counter = match why {
            CloseReason::SlowConsumer => &self.slow,
            CloseReason::TokenExpired => &self.expired,
            CloseReason::Idle => &self.idle,
            CloseReason::ShuttingDown => &self.shutdown,
            CloseReason::Protocol | CloseReason::Binary | CloseReason::TooBig => &self.bad_input,
            CloseReason::Internal => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> SessionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SessionStats {
            connections: *self.live_tx.borrow(),
            refused_upgrades: get(&self.refused),
            frames_sent: get(&self.frames),
            closed_slow_consumer: get(&self.slow),
            closed_token_expired: get(&self.expired),
            closed_idle: get(&self.idle),
            closed_shutting_down: get(&self.shutdown),
            closed_bad_input: get(&self.bad_input),
        }
    }
}
