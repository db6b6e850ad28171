//! The host's share of a step's effects, applied to the instance's [`EffectState`] in the
//! same commit as the step (docs/machine-abi.md, "Who does what").
//!
//! [`apply_step`] is pure: given the effect list of the step that produces version `v` at
//! wall-clock `now`, it arms and cancels durable timers, queues messages for other instances,
//! writes service markers and recomputes `wake_at_ms`. What the module itself carries out
//! (`exec`, sends and delayed sends to children) is left alone here. Log lines are returned,
//! not written, so they appear only once the commit is durable.

use serde_json::Value;

use crate::store::{
    EffectState, OutboxKind, OutboxMessage, ServiceMarker, ServiceState, TimerRecord,
};

/// The prefix of the timer ids [`apply_step`] gives to `enqueue` effects. XState ids never
/// start with it: `after` ids start with `xstate.`, and user ids are the user's own.
pub const ENQUEUE_ID_PREFIX: &str = "statewire.enqueue.";

/// What applying one step's effects left for after the commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// `log` effects, in order: `(label, value)`.
    pub logs: Vec<(Option<String>, Value)>,
    /// Durable timers armed (delayed sends and `enqueue`s).
    pub timers_armed: usize,
    /// Messages queued for other instances (sends and `spawn-instance`).
    pub queued: usize,
    /// Effects the host could not read (a missing `id`, a delay that is not a number); the
    /// module produced them, so they are skipped rather than failing a committed step.
    pub malformed: usize,
}

/// Applies `effects` (the normalized list of the step that produces `version`, committed at
/// `now_ms`) to `state`, then sets `state.wake_at_ms`.
///
/// - `schedule` to the machine itself, its parent or an instance arms a timer
///   `(id, version)` due at `now_ms + delay` (a fractional delay rounds up, so a timer is never
///   early); `schedule` to a child is the module's;
/// - `cancel` removes the newest timer with that id, as XState does (a missing one is fine);
/// - `enqueue` arms a timer due now with an id of its own, so a crash right after the commit
///   still delivers it, after the current event;
/// - `send` to the parent or an instance and `spawn-instance` queue an outbox message with id
///   `"<version>:<index in the list>"`; `send` to a child is the module's;
/// - `start` writes a `Started` marker, `stop` removes it; `log` is returned; `exec` is the
///   module's.
pub fn apply_step(
    state: &mut EffectState,
    effects: &[Value],
    version: u64,
    now_ms: i64,
) -> Applied {
    let mut applied = Applied::default();
    for (index, effect) in effects.iter().enumerate() {
        let kind = effect.get("type").and_then(Value::as_str).unwrap_or("");
        let ok = match kind {
            "schedule" => schedule(state, effect, version, now_ms, &mut applied),
            "cancel" => text(effect, "id").map(|id| {
                state.cancel_timer(id);
            }),
            "enqueue" => effect.get("event").map(|event| {
                state.arm_timer(TimerRecord {
                    id: format!("{ENQUEUE_ID_PREFIX}{version}.{index}"),
                    seq: version,
                    due_at_ms: now_ms,
                    event: event.clone(),
                    target: None,
                    attempts: 0,
                    next_attempt_at_ms: None,
                });
                applied.timers_armed += 1;
            }),
            "send" => send(state, effect, version, index, &mut applied),
            "spawn-instance" => spawn_instance(state, effect, version, index, &mut applied),
            "start" => text(effect, "id").map(|id| {
                let src = text(effect, "src").unwrap_or(id);
                state.start_service(ServiceMarker {
                    id: id.to_owned(),
                    src: src.to_owned(),
                    started_version: version,
                    state: ServiceState::Started,
                });
            }),
            "stop" => text(effect, "id").map(|id| {
                state.remove_service(id);
            }),
            "log" => {
                let label = text(effect, "label").map(str::to_owned);
                let value = effect.get("value").cloned().unwrap_or(Value::Null);
                applied.logs.push((label, value));
                Some(())
            }
            "exec" => Some(()),
            _ => None,
        };
        if ok.is_none() {
            applied.malformed += 1;
        }
    }
    state.wake_at_ms = state.earliest_due_ms(now_ms);
    applied
}

fn text<'a>(effect: &'a Value, field: &str) -> Option<&'a str> {
    effect.get(field).and_then(Value::as_str)
}

/// Where an address points, as far as the host is concerned.
enum Target {
    /// The machine itself (`null`).
    Own,
    /// The parent or another instance: the host delivers.
    Host(Value),
    /// A child running in the module: the module delivers.
    Child,
}

fn target(to: Option<&Value>) -> Option<Target> {
    let to = match to {
        None | Some(Value::Null) => return Some(Target::Own),
        Some(to) => to,
    };
    match to.get("kind").and_then(Value::as_str)? {
        "child" => Some(Target::Child),
        "parent" => Some(Target::Host(to.clone())),
        "instance" => {
            let named = |f: &str| to.get(f).is_some_and(Value::is_string);
            (named("machineName") && named("machineInstanceName")).then(|| Target::Host(to.clone()))
        }
        _ => None,
    }
}

fn schedule(
    state: &mut EffectState,
    effect: &Value,
    version: u64,
    now_ms: i64,
    applied: &mut Applied,
) -> Option<()> {
    let id = text(effect, "id")?;
    let delay = effect.get("delay").and_then(Value::as_f64)?;
    let event = effect.get("event")?;
    let target = match target(effect.get("to"))? {
        Target::Child => return Some(()),
        Target::Own => None,
        Target::Host(to) => Some(to),
    };
    // Saturating float-to-int: NaN and negatives become 0, huge delays the far future.
    let delay_ms = delay.max(0.0).ceil() as i64;
    state.arm_timer(TimerRecord {
        id: id.to_owned(),
        seq: version,
        due_at_ms: now_ms.saturating_add(delay_ms),
        event: event.clone(),
        target,
        attempts: 0,
        next_attempt_at_ms: None,
    });
    applied.timers_armed += 1;
    Some(())
}

fn send(
    state: &mut EffectState,
    effect: &Value,
    version: u64,
    index: usize,
    applied: &mut Applied,
) -> Option<()> {
    let event = effect.get("event")?;
    let to = match target(effect.get("to"))? {
        Target::Child => return Some(()),
        // A send to self is an `enqueue`; the module never lists one as a `send`.
        Target::Own => return None,
        Target::Host(to) => to,
    };
    state.queue(OutboxMessage {
        id: format!("{version}:{index}"),
        to,
        event: event.clone(),
        attempts: 0,
        next_attempt_at_ms: None,
        kind: OutboxKind::Send,
    });
    applied.queued += 1;
    Some(())
}

fn spawn_instance(
    state: &mut EffectState,
    effect: &Value,
    version: u64,
    index: usize,
    applied: &mut Applied,
) -> Option<()> {
    let machine = text(effect, "machineName")?;
    let instance = text(effect, "machineInstanceName")?;
    let context = match effect.get("context") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(context) => context.clone(),
    };
    let machine_version_id = text(effect, "machineVersionId").map(str::to_owned);
    state.queue(OutboxMessage {
        id: format!("{version}:{index}"),
        to: serde_json::json!({
            "kind": "instance",
            "machineName": machine,
            "machineInstanceName": instance,
        }),
        event: Value::Null,
        attempts: 0,
        next_attempt_at_ms: None,
        kind: OutboxKind::SpawnInstance {
            context,
            machine_version_id,
        },
    });
    applied.queued += 1;
    Some(())
}

#[cfg(test)]
mod tests;
