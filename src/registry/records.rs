//! The records writes produce: the next record and history entry of an accepted step, and a
//! write that changes only the effect state (no history entry, `ts` unchanged).

use serde_json::Value;

use super::effects::apply_step;
use super::write::AfterCommit;
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::runtime::Step;
use crate::store::{Commit, EffectState, Expect, InstanceRecord, TransitionRecord};

/// The record and history entry an accepted event produces, with the step's effects applied
/// over `effects` (the current effect state, as the caller prepared it). `ts` is strictly
/// increasing per instance even if the wall clock steps back.
pub(super) fn next_commit(
    key: &InstanceKey,
    current: &InstanceRecord,
    mut effects: EffectState,
    step: Step,
    event: &Value,
) -> (Commit, AfterCommit) {
    let now = now_ms();
    let version = current.version + 1;
    let applied = apply_step(&mut effects, &step.effects, version, now);
    let next = InstanceRecord {
        machine_version: current.machine_version.clone(),
        desired_machine_version: current.desired_machine_version.clone(),
        status: current.status,
        version,
        ts_ms: now.max(current.ts_ms + 1),
        snapshot: step.snapshot,
        state: step.state.clone(),
        context: step.context,
        tags: step.tags,
        done: step.done,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: current.created_at_ms,
        updated_at_ms: now,
        effects,
    };
    let commit = Commit {
        key: key.clone(),
        expect: Expect::Version(current.version),
        next,
        transition: Some(TransitionRecord {
            version,
            created_at_ms: now,
            event: event.clone(),
            state: step.state,
        }),
    };
    let after = AfterCommit {
        effects: step.effects,
        applied,
        module: None,
    };
    (commit, after)
}

/// A write that changes only effect state (a failed attempt, a delivered message removed):
/// the version moves, because it is the compare-and-set token, but `ts`, the state and the
/// history do not. `wake_at_ms` is recomputed from what is left.
pub(super) fn effects_only_commit(
    key: &InstanceKey,
    current: &InstanceRecord,
    mut effects: EffectState,
) -> (Commit, AfterCommit) {
    let now = now_ms();
    effects.wake_at_ms = effects.earliest_due_ms(now);
    let next = InstanceRecord {
        version: current.version + 1,
        write_id: uuid::Uuid::new_v4(),
        updated_at_ms: now,
        effects,
        ..current.clone()
    };
    let commit = Commit {
        key: key.clone(),
        expect: Expect::Version(current.version),
        next,
        transition: None,
    };
    (commit, AfterCommit::default())
}
