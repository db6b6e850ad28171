//! Delivering an instance's outbox: events to other instances (or its parent), and the
//! creation of persistent children.
//!
//! The sender is not held while a message is delivered (two instances sending to each other
//! would otherwise wait on each other): its ready messages are read, each is delivered
//! through the receiver's own write path, and then one effects-only write of the sender
//! removes the delivered messages and counts the failed ones. A crash in between delivers a
//! message again; the receiver applies it once, because the message's delivery id is
//! recorded in the receiver's commit of it and checked before a transition. Creating a child
//! is idempotent by name.
//!
//! Messages to one receiver go out in the order they were queued: after a failure, the later
//! messages to that receiver wait for the failed one's next attempt (without an attempt of
//! their own). This holds across passes: a message is not attempted while an earlier one to
//! the same receiver is still in the outbox waiting for its retry. Once the earlier one is
//! delivered or dropped after its last attempt, the later ones go.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::fire::counts_as_attempt;
use super::write::effects_only_commit;
use super::{CreateRequest, Inner, RegistryError};
use crate::clock::now_ms;
use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use crate::metrics::timers::{self as metrics, Delivery};
use crate::store::{EffectState, InstanceRecord, OutboxKind, OutboxMessage};

/// Why a message could not be delivered this time.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The receiver's write failed in a way that counts as an attempt.
    #[error(transparent)]
    Counted(RegistryError),
    /// Not the message's fault (contention, shutdown): try again later, uncounted.
    #[error(transparent)]
    Uncounted(RegistryError),
    /// The address names no instance this node can reach; counted like any failure.
    #[error("{0}")]
    Address(String),
}

impl From<RegistryError> for Failure {
    /// A missing receiver counts: it may be created later, but not forever.
    fn from(e: RegistryError) -> Self {
        if counts_as_attempt(&e) || matches!(e, RegistryError::InstanceNotFound(_)) {
            Failure::Counted(e)
        } else {
            Failure::Uncounted(e)
        }
    }
}

/// What became of one message in a dispatch pass.
enum Fate {
    Delivered,
    Failed(String),
    /// Waits for an earlier failed message to the same receiver, until `until_ms`.
    Deferred(i64),
}

/// `authContext` of a write made by another instance (State Backed's shape).
pub(super) fn sender_auth(sender: &InstanceKey) -> Value {
    json!({
        "stateBackedSender": {
            "machineName": sender.machine.as_str(),
            "machineInstanceName": sender.instance.as_str(),
        }
    })
}

impl Inner {
    /// Delivers every ready message of `sender`'s outbox, then records what happened.
    pub(super) async fn dispatch_outbox(
        self: &Arc<Self>,
        sender: &InstanceKey,
        record: &InstanceRecord,
    ) -> Result<(), RegistryError> {
        let _write = self.inflight.begin()?;
        let now = now_ms();
        let mut fates: Vec<(String, Fate)> = Vec::new();
        // Receivers with an earlier message that failed (in this pass or before) and waits for
        // its next attempt, with when their later messages may go (`None`: not in this pass).
        let mut blocked: HashMap<String, Option<i64>> = HashMap::new();
        let mut uncounted = None;
        let policy = *self.retry.read();
        // In queue order, waiting messages included: they hold back later ones.
        for message in &record.effects.outbox {
            let receiver = resolve(&message.to, &record.effects);
            let address = match &receiver {
                Ok(key) => key.to_string(),
                Err(_) => message.to.to_string(),
            };
            let ready_at = message.ready_at_ms(now);
            if ready_at > now {
                blocked.entry(address).or_insert(Some(ready_at));
                continue;
            }
            if let Some(until) = blocked.get(&address) {
                if let Some(until) = until {
                    fates.push((message.id.clone(), Fate::Deferred(*until)));
                }
                continue;
            }
            let result = match receiver {
                Ok(receiver) => self.deliver(sender, &receiver, message).await,
                Err(reason) => Err(Failure::Address(reason)),
            };
            let fate = match result {
                Ok(()) => Fate::Delivered,
                Err(Failure::Uncounted(e)) => {
                    tracing::debug!(instance = %sender, message = %message.id, error = %e, "message not delivered; will retry");
                    blocked.insert(address, None);
                    uncounted = Some(e);
                    continue;
                }
                Err(failure) => {
                    // After its last attempt the message is dropped: the later ones go on.
                    if message.attempts + 1 < policy.max_attempts {
                        blocked.insert(address, Some(now.saturating_add(policy.interval_ms)));
                    }
                    Fate::Failed(failure.to_string())
                }
            };
            fates.push((message.id.clone(), fate));
        }
        if !fates.is_empty() {
            self.settle_outbox(sender, &fates, policy).await?;
        }
        // The caller backs off: what was not attempted is still ready.
        uncounted.map_or(Ok(()), Err)
    }

    async fn settle_outbox(
        self: &Arc<Self>,
        sender: &InstanceKey,
        fates: &[(String, Fate)],
        policy: super::RetryPolicy,
    ) -> Result<(), RegistryError> {
        let outcome = Mutex::new(Vec::new());
        {
            let outcome = &outcome;
            self.write_existing(sender, |current| async move {
                let (effects, settled) = settle(&current.effects, fates, policy);
                if effects == current.effects {
                    return Ok(None);
                }
                *outcome.lock() = settled;
                Ok(Some(effects_only_commit(sender, &current, effects)))
            })
            .await?;
        }
        report(sender, &outcome.into_inner());
        Ok(())
    }

    async fn deliver(
        self: &Arc<Self>,
        sender: &InstanceKey,
        receiver: &InstanceKey,
        message: &OutboxMessage,
    ) -> Result<(), Failure> {
        match &message.kind {
            OutboxKind::Send => {
                let delivery_id = message.delivery_id(sender);
                self.receive(receiver, &message.event, sender, &delivery_id)
                    .await?;
                Ok(())
            }
            OutboxKind::SpawnInstance {
                context,
                machine_version_id,
            } => {
                self.spawn_child(receiver, context, machine_version_id.as_deref(), sender)
                    .await
            }
        }
    }

    /// An event from another instance: the receiver's `allowWrite` sees
    /// `authContext.stateBackedSender`; a delivery id already received writes nothing.
    async fn receive(
        self: &Arc<Self>,
        receiver: &InstanceKey,
        event: &Value,
        sender: &InstanceKey,
        delivery_id: &str,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let _write = self.inflight.begin()?;
        self.pay_owed(receiver).await?;
        let auth = &sender_auth(sender);
        self.write_existing(receiver, |current| async move {
            self.event_step(receiver, &current, event, auth, Some(delivery_id))
                .await
        })
        .await
    }

    /// Creates `child` unless it exists, with `parent` recorded as its parent.
    async fn spawn_child(
        self: &Arc<Self>,
        child: &InstanceKey,
        context: &Value,
        version: Option<&str>,
        parent: &InstanceKey,
    ) -> Result<(), Failure> {
        let version = match version {
            Some(id) => MachineVersionId::parse(id)
                .ok_or_else(|| Failure::Address(format!("invalid machine version id {id:?}")))?,
            None => {
                let machine = self
                    .store
                    .get_machine(&child.machine)
                    .await
                    .map_err(|e| Failure::Counted(e.into()))?
                    .ok_or_else(|| Failure::Address(format!("no machine {}", child.machine)))?;
                machine.current_version.ok_or_else(|| {
                    Failure::Address(format!("machine {} has no current version", child.machine))
                })?
            }
        };
        let request = CreateRequest {
            version,
            context: context.clone(),
            auth_context: sender_auth(parent),
        };
        match self.create(child, request, Some(parent.clone())).await {
            Ok(_) | Err(RegistryError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The receiver an address names: the recorded parent, or an instance by name.
fn resolve(to: &Value, effects: &EffectState) -> Result<InstanceKey, String> {
    match to.get("kind").and_then(Value::as_str) {
        Some("parent") => effects
            .parent
            .clone()
            .ok_or_else(|| "this instance has no parent".to_owned()),
        Some("instance") => {
            let name = |field: &str| to.get(field).and_then(Value::as_str).unwrap_or("");
            let machine = MachineName::parse(name("machineName"))
                .map_err(|_| format!("invalid machine name in {to}"))?;
            let instance = InstanceName::parse(name("machineInstanceName"))
                .map_err(|_| format!("invalid instance name in {to}"))?;
            Ok(InstanceKey::new(machine, instance))
        }
        _ => Err(format!("unknown address {to}")),
    }
}

/// What settling did to one message, reported once the write is durable.
struct Settled {
    id: String,
    kind: Delivery,
    /// `None` when delivered; else the attempts so far and whether it was dropped.
    failed: Option<(u32, bool)>,
    reason: String,
}

/// `effects` with the pass's results applied to whatever messages are still there.
fn settle(
    effects: &EffectState,
    fates: &[(String, Fate)],
    policy: super::RetryPolicy,
) -> (EffectState, Vec<Settled>) {
    let mut effects = effects.clone();
    let mut settled = Vec::new();
    for (id, fate) in fates {
        let Some(message) = effects.outbox_message_mut(id) else {
            continue;
        };
        let kind = match message.kind {
            OutboxKind::Send => Delivery::Send,
            OutboxKind::SpawnInstance { .. } => Delivery::Spawn,
        };
        let (failed, reason) = match fate {
            Fate::Deferred(until) => {
                message.next_attempt_at_ms = Some(*until);
                continue;
            }
            Fate::Delivered => {
                effects.remove_outbox(id);
                (None, String::new())
            }
            Fate::Failed(reason) => {
                message.attempts += 1;
                let attempts = message.attempts;
                let dropped = attempts >= policy.max_attempts;
                let reason = format!("{reason} (to {})", message.to);
                if dropped {
                    effects.remove_outbox(id);
                } else {
                    message.next_attempt_at_ms = Some(now_ms().saturating_add(policy.interval_ms));
                }
                (Some((attempts, dropped)), reason)
            }
        };
        settled.push(Settled {
            id: id.clone(),
            kind,
            failed,
            reason,
        });
    }
    (effects, settled)
}

fn report(sender: &InstanceKey, settled: &[Settled]) {
    for s in settled {
        let Some((attempts, dropped)) = s.failed else {
            metrics::outbox_delivered(s.kind);
            continue;
        };
        metrics::attempt_failed(s.kind);
        if dropped {
            metrics::dropped(s.kind);
            tracing::warn!(
                machine = %sender.machine,
                instance = %sender.instance,
                message = %s.id,
                attempts,
                reason = %s.reason,
                "message dropped after its last attempt"
            );
        } else {
            tracing::info!(
                machine = %sender.machine,
                instance = %sender.instance,
                message = %s.id,
                attempts,
                reason = %s.reason,
                "message delivery failed; will retry"
            );
        }
    }
}

#[cfg(test)]
mod tests;
