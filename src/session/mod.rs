//! WebSocket connections: subscriptions, commands, pings, a bounded outbound queue.
//!
//! The path of a connection: `GET /rt?token=…` reaches [`RealTime::upgrade`] (`upgrade`:
//! handshake and token checks, refused with the HTTP error body before switching protocols);
//! then the connection (`connection`) runs as two tasks: the reader (`reader`) decodes each
//! text frame (`protocol`) and handles it — subscriptions inline (`subscriptions`), commands on
//! their own tasks (`commands`) — and the writer (`writer`) is the only one to write: replies
//! from a bounded queue, updates from the connection's [`Outbox`], close frames (`close`).
//!
//! Authorization over time: `allowRead` is checked when a subscription is made (and again on
//! each repeated subscribe), not for every update; the token is checked at upgrade, and the
//! connection is closed with 4001 once the token's `exp` (plus the verification leeway) has
//! passed. Tokens that are already past that point, or within [`MIN_TOKEN_LIFETIME`] of it,
//! are refused at upgrade with 401, so a client that reconnects at once with the same token
//! meets a cheap refusal instead of a reconnect loop. See docs/realtime.md.
//!
//! [`Outbox`]: crate::fanout::Outbox

mod close;
mod commands;
mod connection;
mod protocol;
mod reader;
mod stats;
mod subscriptions;
mod upgrade;
mod writer;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::api::{ApiState, Body, UpgradeHandler};
use crate::config::Config;
use crate::fanout::{Fanout, FanoutConfig, FanoutStats};

pub use close::CloseReason;
pub use stats::SessionStats;

/// Most instances one connection may subscribe to. A browser tab rarely watches more than a
/// few dozen; the bound keeps one connection from pinning unbounded server memory.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 1024;

/// Commands (create, send, get) one connection may have running at once; beyond it the
/// connection's frames are not read until one finishes.
pub const MAX_COMMANDS_IN_FLIGHT: usize = 16;

/// Replies, errors and pongs waiting for the writer, per connection. Updates do not go through
/// this queue (they are conflated per subscription), so it only fills when a client sends
/// requests faster than it reads the answers; then reading stops until it drains.
pub const QUEUE_FRAMES: usize = 64;

/// A token whose validity ends sooner than this is refused at upgrade.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(5);

/// Bytes read from the socket at a time. Small, because idle connections dominate; larger
/// messages are still read, in several steps.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Frames are written once this many bytes are buffered, or when the writer has nothing more.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Settings of the sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A connection that sends nothing (not even a ping) for this long is closed (4000).
    pub idle_timeout: Duration,
    /// A write that stays blocked for this long closes the connection (4008).
    pub stall_timeout: Duration,
    /// How long a closing connection waits for the client's close frame.
    pub close_linger: Duration,
}

impl SessionConfig {
    pub fn from_config(config: &Config) -> Self {
        let ws = &config.websocket;
        Self {
            idle_timeout: Duration::from_millis(
                ws.ping_interval_ms.saturating_add(ws.ping_grace_ms),
            ),
            stall_timeout: Duration::from_millis(ws.stall_timeout_ms),
            close_linger: Duration::from_secs(2),
        }
    }
}

/// The real-time side of the server: serves `/rt` and pushes committed changes. Cheap to clone.
#[derive(Clone)]
pub struct RealTime {
    shared: Arc<Shared>,
}

/// What every connection shares.
struct Shared {
    fanout: Fanout,
    config: SessionConfig,
    counters: stats::Counters,
    /// Set once shutdown wants every connection closed.
    closing_tx: watch::Sender<bool>,
    next_conn: AtomicU64,
}

impl RealTime {
    /// Starts the fan-out workers; register [`RealTime::fanout`] with the registry so commits
    /// reach subscribers. Must be called inside a tokio runtime.
    pub fn new(config: &Config) -> RealTime {
        RealTime {
            shared: Arc::new(Shared {
                fanout: Fanout::start(FanoutConfig::default()),
                config: SessionConfig::from_config(config),
                counters: stats::Counters::default(),
                closing_tx: watch::channel(false).0,
                next_conn: AtomicU64::new(1),
            }),
        }
    }

    /// The commit listener feeding subscribers.
    pub fn fanout(&self) -> &Fanout {
        &self.shared.fanout
    }

    pub fn stats(&self) -> SessionStats {
        self.shared.counters.snapshot()
    }

    pub fn fanout_stats(&self) -> FanoutStats {
        self.shared.fanout.stats()
    }

    /// The shutdown phase of the sessions, run once in-flight commits have ended: publishes
    /// what the fan-out still holds, lets each connection write its pending updates, then
    /// closes it with 1001. `true` when every connection was gone within `grace`.
    pub async fn close_all(&self, grace: Duration) -> bool {
        let shared = &self.shared;
        let open = shared.counters.snapshot().connections;
        tracing::info!(open, "closing real-time connections");
        let closed = tokio::time::timeout(grace, async {
            shared.fanout.flush().await;
            shared.closing_tx.send_replace(true);
            shared.counters.none_live().await;
        })
        .await
        .is_ok();
        if !closed {
            tracing::warn!(
                left = shared.counters.snapshot().connections,
                "grace period over; real-time connections still open"
            );
        }
        closed
    }
}

#[async_trait::async_trait]
impl UpgradeHandler for RealTime {
    async fn upgrade(&self, api: Arc<ApiState>, request: Request<Incoming>) -> Response<Body> {
        upgrade::accept(&self.shared, api, request).await
    }
}
