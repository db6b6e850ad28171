//! The `[effects]` section: retries of timers and messages, the settle window, and `fetch`.

use serde::{Deserialize, Serialize};

use super::FetchConfig;

/// What machines' effects may do outside the instance, and how failed deliveries of timers,
/// messages between instances and persistent-child creations are retried (State Backed: at
/// most 5 attempts, ~30 s apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EffectsConfig {
    /// Time from a failed delivery attempt to the next one.
    pub retry_interval_ms: u64,
    /// Attempts after which a timer or message is dropped (with a log line).
    pub max_attempts: u32,
    /// Outbound `fetch` from machines.
    pub fetch: FetchConfig,
    /// How long a request waits for its instance's services to settle after its event.
    pub settle_window_ms: u64,
}

impl Default for EffectsConfig {
    fn default() -> Self {
        Self {
            retry_interval_ms: 30_000,
            max_attempts: 5,
            fetch: FetchConfig::default(),
            settle_window_ms: 90_000,
        }
    }
}
