//! Delivering a durable timer through the instance's normal write path, and counting failed
//! attempts.
//!
//! A timer `(id, seq)` is delivered by one compare-and-set that runs the transition with the
//! stored event and, in the same write, removes exactly that timer and applies the new
//! step's effects. A second delivery of the same timer (two scans, a zombie wake-up) finds it
//! gone and changes nothing, so its effect on the state happens once.
//!
//! Timer events skip `allowWrite`: the machine scheduled them itself, and no caller stands
//! behind them whose authContext the authorizer could judge.

use std::sync::Arc;

use parking_lot::Mutex;

use super::write::{effects_only_commit, Planned};
use super::{Inner, RegistryError};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::metrics::timers as metrics;
use crate::store::{EffectState, InstanceRecord, OutboxKind, OutboxMessage, TimerRecord};

/// How failed deliveries of timers and messages are retried (`[effects]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Time from a failed attempt to the next one.
    pub interval_ms: i64,
    /// Attempts after which a timer or message is dropped.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            interval_ms: 30_000,
            max_attempts: 5,
        }
    }
}

impl From<&crate::config::EffectsConfig> for RetryPolicy {
    fn from(c: &crate::config::EffectsConfig) -> Self {
        Self {
            interval_ms: i64::try_from(c.retry_interval_ms).unwrap_or(i64::MAX),
            max_attempts: c.max_attempts.max(1),
        }
    }
}

/// How one delivery of a timer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerFire {
    /// The event made a transition; the timer is gone. `version` is the new one.
    Delivered { version: u64 },
    /// The timer is addressed to another instance: it left the timers for the outbox in an
    /// effects-only write, and goes out from there.
    Forwarded,
    /// No timer `(id, seq)` any more (delivered, cancelled or dropped already): no change.
    Stale,
    /// Not due yet by this node's clock (timers never fire early): no change.
    NotDue { ready_at_ms: i64 },
    /// The attempt failed and was counted; after the last one the timer was dropped.
    Failed {
        attempts: u32,
        dropped: bool,
        reason: String,
    },
}

/// Whether a failure counts as an attempt. Conflicts, contention and shutdown are not the
/// timer's fault (the write is simply tried again later); a vanished instance has no timers.
pub(super) fn counts_as_attempt(e: &RegistryError) -> bool {
    use RegistryError as E;
    match e {
        E::Contended { .. } | E::ShuttingDown | E::TaskFailed(_) | E::InstanceNotFound(_) => false,
        E::Paused(_)
        | E::Rejected
        | E::AlreadyExists(_)
        | E::VersionNotFound { .. }
        | E::MissingCode(_)
        | E::Runtime(_)
        | E::Store(_) => true,
    }
}

impl Inner {
    pub(super) async fn fire_timer(
        self: &Arc<Self>,
        key: &InstanceKey,
        id: &str,
        seq: u64,
    ) -> Result<TimerFire, RegistryError> {
        let _write = self.inflight.begin()?;
        self.pay_owed(key).await?;
        // How the last planned write ends, and how late a first attempt came.
        let outcome = Mutex::new((TimerFire::Stale, None));
        let result = {
            let outcome = &outcome;
            self.write_existing(key, |current| async move {
                let first_lag_ms = current
                    .effects
                    .timer(id, seq)
                    .filter(|t| t.attempts == 0)
                    .map(|t| now_ms() - t.due_at_ms);
                let (plan, fire) = self.plan_fire(key, &current, id, seq).await?;
                *outcome.lock() = (fire, first_lag_ms);
                Ok(plan)
            })
            .await
        };
        let (planned, first_lag_ms) = outcome.into_inner();
        if let (TimerFire::Delivered { .. } | TimerFire::Failed { .. }, Some(lag)) =
            (&planned, first_lag_ms)
        {
            metrics::due_lag(lag);
        }
        let fire = match result {
            Ok(_) => planned,
            // The transition was computed but the store failed to take it: that attempt
            // failed too, and is counted by a write of its own.
            Err(RegistryError::Store(e)) if matches!(planned, TimerFire::Delivered { .. }) => {
                self.count_failed_fire(key, id, seq, &RegistryError::Store(e))
                    .await?
            }
            Err(e) => return Err(e),
        };
        self.report_fire(key, id, &fire);
        Ok(fire)
    }

    /// What firing `(id, seq)` writes on `current`, and how it ends if that write commits.
    async fn plan_fire(
        self: &Arc<Self>,
        key: &InstanceKey,
        current: &Arc<InstanceRecord>,
        id: &str,
        seq: u64,
    ) -> Result<(Planned, TimerFire), RegistryError> {
        let Some(timer) = current.effects.timer(id, seq).cloned() else {
            return Ok((None, TimerFire::Stale));
        };
        let now = now_ms();
        if timer.ready_at_ms() > now {
            let ready_at_ms = timer.ready_at_ms();
            return Ok((None, TimerFire::NotDue { ready_at_ms }));
        }
        let mut effects = current.effects.clone();
        effects.remove_timer(id, seq);
        if let Some(to) = timer.target.clone() {
            effects.queue(forwarded(current.version + 1, &timer, to));
            let plan = effects_only_commit(key, current, effects);
            return Ok((Some(plan), TimerFire::Forwarded));
        }
        match self.machine_step(key, current, effects, &timer.event).await {
            Ok(plan) => {
                let version = plan.0.next.version;
                Ok((Some(plan), TimerFire::Delivered { version }))
            }
            Err(e) if counts_as_attempt(&e) => {
                let (effects, fire) = self.failed_attempt(&current.effects, id, seq, &e);
                Ok((Some(effects_only_commit(key, current, effects)), fire))
            }
            Err(e) => Err(e),
        }
    }

    /// `effects` after one more failed attempt of `(id, seq)`: the next attempt one retry
    /// interval from now, or the timer dropped after the last attempt.
    fn failed_attempt(
        &self,
        effects: &EffectState,
        id: &str,
        seq: u64,
        error: &RegistryError,
    ) -> (EffectState, TimerFire) {
        let policy = *self.retry.read();
        let mut effects = effects.clone();
        let reason = error.to_string();
        let Some(timer) = effects.timer_mut(id, seq) else {
            return (effects, TimerFire::Stale);
        };
        timer.attempts += 1;
        let attempts = timer.attempts;
        let dropped = attempts >= policy.max_attempts;
        if dropped {
            effects.remove_timer(id, seq);
        } else {
            timer.next_attempt_at_ms = Some(now_ms().saturating_add(policy.interval_ms));
        }
        let fire = TimerFire::Failed {
            attempts,
            dropped,
            reason,
        };
        (effects, fire)
    }

    /// Counts a failed attempt by itself, after the write of a computed transition failed.
    async fn count_failed_fire(
        self: &Arc<Self>,
        key: &InstanceKey,
        id: &str,
        seq: u64,
        error: &RegistryError,
    ) -> Result<TimerFire, RegistryError> {
        let outcome = Mutex::new(TimerFire::Stale);
        {
            let outcome = &outcome;
            self.write_existing(key, |current| async move {
                if current.effects.timer(id, seq).is_none() {
                    return Ok(None);
                }
                let (effects, fire) = self.failed_attempt(&current.effects, id, seq, error);
                *outcome.lock() = fire;
                Ok(Some(effects_only_commit(key, &current, effects)))
            })
            .await?;
        }
        Ok(outcome.into_inner())
    }

    fn report_fire(&self, key: &InstanceKey, id: &str, fire: &TimerFire) {
        match fire {
            TimerFire::Delivered { version } => {
                metrics::delivered();
                tracing::debug!(instance = %key, timer = id, version, "timer delivered");
            }
            TimerFire::Forwarded => {
                tracing::debug!(instance = %key, timer = id, "timer handed to the outbox");
            }
            TimerFire::Stale => {
                metrics::stale();
                tracing::debug!(instance = %key, timer = id, "stale timer ignored");
            }
            TimerFire::NotDue { .. } => {}
            TimerFire::Failed {
                attempts,
                dropped,
                reason,
            } => {
                metrics::attempt_failed(metrics::Delivery::Timer);
                if *dropped {
                    metrics::dropped(metrics::Delivery::Timer);
                    tracing::warn!(
                        machine = %key.machine,
                        instance = %key.instance,
                        timer = id,
                        attempts,
                        reason = %reason,
                        "timer dropped after its last attempt"
                    );
                } else {
                    tracing::info!(
                        machine = %key.machine,
                        instance = %key.instance,
                        timer = id,
                        attempts,
                        reason = %reason,
                        "timer delivery failed; will retry"
                    );
                }
            }
        }
    }
}

/// The outbox message a timer addressed to another instance becomes. Its id names the write
/// that moves it (`version`), so it is unique among the sender's messages.
fn forwarded(version: u64, timer: &TimerRecord, to: serde_json::Value) -> OutboxMessage {
    OutboxMessage {
        id: format!("{version}:timer:{}:{}", timer.seq, timer.id),
        to,
        event: timer.event.clone(),
        attempts: 0,
        next_attempt_at_ms: None,
        kind: OutboxKind::Send,
    }
}
