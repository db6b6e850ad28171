use serde_json::{json, Value};

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn apply(state: &mut EffectState, effects: Value, version: u64) -> Applied {
    apply_step(state, effects.as_array().unwrap(), version, NOW)
}

fn after(id: &str, delay: i64) -> Value {
    json!({"type": "schedule", "id": id, "delay": delay, "event": {"type": id}, "to": null})
}

#[test]
fn a_delayed_send_to_self_arms_a_timer_of_this_generation() {
    let mut e = EffectState::default();
    let applied = apply(&mut e, json!([after("xstate.after(300)#m.a", 300)]), 4);
    assert_eq!(applied.timers_armed, 1);
    let t = &e.timers[0];
    assert_eq!(t.id, "xstate.after(300)#m.a");
    assert_eq!((t.seq, t.due_at_ms), (4, NOW + 300));
    assert_eq!(t.event, json!({"type": "xstate.after(300)#m.a"}));
    assert_eq!(t.target, None);
    assert_eq!(t.attempts, 0);
    assert_eq!(e.wake_at_ms, Some(NOW + 300));
}

#[test]
fn delays_round_up_and_never_go_negative() {
    let mut e = EffectState::default();
    let effects = json!([
        {"type": "schedule", "id": "f", "delay": 10.2, "event": {"type": "F"}, "to": null},
        {"type": "schedule", "id": "n", "delay": -5, "event": {"type": "N"}, "to": null},
    ]);
    apply(&mut e, effects, 1);
    assert_eq!(e.timer("f", 1).unwrap().due_at_ms, NOW + 11);
    assert_eq!(e.timer("n", 1).unwrap().due_at_ms, NOW);
    assert_eq!(e.wake_at_ms, Some(NOW));
}

#[test]
fn timers_to_the_parent_or_an_instance_keep_their_target_and_child_ones_are_skipped() {
    let mut e = EffectState::default();
    let instance = json!({"kind": "instance", "machineName": "m", "machineInstanceName": "i"});
    let effects = json!([
        {"type": "schedule", "id": "p", "delay": 5, "event": {"type": "P"}, "to": {"kind": "parent"}},
        {"type": "schedule", "id": "i", "delay": 5, "event": {"type": "I"}, "to": instance},
        {"type": "schedule", "id": "c", "delay": 5, "event": {"type": "C"},
         "to": {"kind": "child", "id": "kid"}},
    ]);
    let applied = apply(&mut e, effects, 2);
    assert_eq!(applied.timers_armed, 2);
    assert_eq!(applied.malformed, 0);
    assert_eq!(
        e.timer("p", 2).unwrap().target,
        Some(json!({"kind": "parent"}))
    );
    assert_eq!(e.timer("i", 2).unwrap().target, Some(instance));
    assert!(e.timer("c", 2).is_none());
}

#[test]
fn an_external_self_transition_cancels_then_rearms_the_same_id() {
    let mut e = EffectState::default();
    apply(&mut e, json!([after("a", 300)]), 1);
    let reenter = json!([{"type": "cancel", "id": "a"}, after("a", 300)]);
    apply_step(&mut e, reenter.as_array().unwrap(), 2, NOW + 200);
    assert_eq!(e.timers.len(), 1);
    assert_eq!(e.timers[0].seq, 2);
    assert_eq!(e.timers[0].due_at_ms, NOW + 500);
    assert_eq!(e.wake_at_ms, Some(NOW + 500));
}

#[test]
fn cancel_of_a_missing_id_is_fine_and_removes_only_the_newest() {
    let mut e = EffectState::default();
    apply(&mut e, json!([{"type": "cancel", "id": "nothing"}]), 1);
    assert!(e.timers.is_empty());
    assert_eq!(e.wake_at_ms, None);
    apply(&mut e, json!([after("t", 100)]), 2);
    apply(&mut e, json!([after("t", 100)]), 3);
    apply(&mut e, json!([{"type": "cancel", "id": "t"}]), 4);
    let left: Vec<u64> = e.timers.iter().map(|t| t.seq).collect();
    assert_eq!(left, [2], "the older orphan keeps running, as in XState");
}

#[test]
fn enqueue_becomes_a_timer_due_now_with_an_id_no_user_can_pick() {
    let mut e = EffectState::default();
    let effects = json!([
        {"type": "enqueue", "event": {"type": "NEXT"}},
        {"type": "log", "label": null, "value": 1},
        {"type": "enqueue", "event": {"type": "THEN"}},
    ]);
    let applied = apply(&mut e, effects, 7);
    assert_eq!(applied.timers_armed, 2);
    let ids: Vec<&str> = e.timers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["statewire.enqueue.7.0", "statewire.enqueue.7.2"]);
    assert!(e.timers.iter().all(|t| t.due_at_ms == NOW && t.seq == 7));
    assert_eq!(e.timers[1].event, json!({"type": "THEN"}));
    assert_eq!(e.wake_at_ms, Some(NOW));
}

#[test]
fn sends_to_the_parent_or_an_instance_are_queued_and_child_sends_are_not() {
    let mut e = EffectState::default();
    let instance = json!({"kind": "instance", "machineName": "m", "machineInstanceName": "i"});
    let effects = json!([
        {"type": "exec", "action": "notify"},
        {"type": "send", "to": {"kind": "parent"}, "event": {"type": "HELLO"}},
        {"type": "send", "to": {"kind": "child", "id": "kid"}, "event": {"type": "X"}},
        {"type": "send", "to": instance, "event": {"type": "PING", "n": 1}},
    ]);
    let applied = apply(&mut e, effects, 5);
    assert_eq!(applied.queued, 2);
    let ids: Vec<&str> = e.outbox.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["5:1", "5:3"]);
    assert_eq!(e.outbox[0].to, json!({"kind": "parent"}));
    assert_eq!(e.outbox[1].event, json!({"type": "PING", "n": 1}));
    assert!(e.outbox.iter().all(|m| m.kind == OutboxKind::Send));
    assert_eq!(e.wake_at_ms, Some(NOW), "unattempted messages are due now");
}

#[test]
fn spawn_instance_queues_an_idempotent_create() {
    let mut e = EffectState::default();
    let effects = json!([
        {"type": "spawn-instance", "id": "kid", "machineName": "child",
         "machineInstanceName": "c-1", "machineVersionId": null, "context": {"n": 2}},
        {"type": "spawn-instance", "id": "k2", "machineName": "child",
         "machineInstanceName": "c-2", "machineVersionId": "ver_abc", "context": null},
    ]);
    apply(&mut e, effects, 3);
    let m = &e.outbox[0];
    assert_eq!(m.id, "3:0");
    assert_eq!(
        m.to,
        json!({"kind": "instance", "machineName": "child", "machineInstanceName": "c-1"})
    );
    assert_eq!(
        m.kind,
        OutboxKind::SpawnInstance {
            context: json!({"n": 2}),
            machine_version_id: None
        }
    );
    assert_eq!(
        e.outbox[1].kind,
        OutboxKind::SpawnInstance {
            context: json!({}),
            machine_version_id: Some("ver_abc".into())
        }
    );
}

#[test]
fn start_and_stop_write_and_clear_service_markers() {
    let mut e = EffectState::default();
    apply(
        &mut e,
        json!([{"type": "start", "id": "fetchUser", "src": "loadUser"}]),
        2,
    );
    let marker = e.service("fetchUser").unwrap();
    assert_eq!(marker.src, "loadUser");
    assert_eq!(marker.started_version, 2);
    assert_eq!(marker.state, ServiceState::Started);
    apply(&mut e, json!([{"type": "stop", "id": "fetchUser"}]), 3);
    assert!(e.services.is_empty());
    assert_eq!(e.wake_at_ms, None, "services do not set a wake time");
}

#[test]
fn logs_are_returned_in_order_and_malformed_effects_are_counted() {
    let mut e = EffectState::default();
    let effects = json!([
        {"type": "log", "label": "entered", "value": {"n": 1}},
        {"type": "schedule", "id": "x", "delay": "soon", "event": {"type": "X"}, "to": null},
        {"type": "send", "to": {"kind": "elsewhere"}, "event": {"type": "Y"}},
        {"type": "log", "value": "bare"},
        {"type": "mystery"},
    ]);
    let applied = apply(&mut e, effects, 1);
    assert_eq!(
        applied.logs,
        [
            (Some("entered".to_owned()), json!({"n": 1})),
            (None, json!("bare"))
        ]
    );
    assert_eq!(applied.malformed, 3);
    assert!(e.is_empty());
}

#[test]
fn the_wake_time_is_the_earliest_of_what_is_left() {
    let mut e = EffectState::default();
    apply(&mut e, json!([after("late", 900), after("soon", 100)]), 1);
    assert_eq!(e.wake_at_ms, Some(NOW + 100));
    apply(&mut e, json!([{"type": "cancel", "id": "soon"}]), 2);
    assert_eq!(e.wake_at_ms, Some(NOW + 900));
    apply(&mut e, json!([{"type": "cancel", "id": "late"}]), 3);
    assert_eq!(e.wake_at_ms, None);
}
