//! Effect state in the instance row: exact round trips, and writes that are not transitions.

use std::sync::Arc;

use serde_json::json;

use super::{instance_key, instance_record, transition_record, unique_machine};
use crate::ids::{InstanceKey, MachineName};
use crate::store::{
    CasOutcome, Commit, EffectState, Expect, OutboxKind, OutboxMessage, PageRequest, ServiceMarker,
    ServiceState, Store, TimerRecord,
};

/// Effect state using every field and variant, different for each `n`.
pub(super) fn full_effects(n: u64) -> EffectState {
    let ms = 1_700_000_100_000 + i64::try_from(n).expect("small n");
    let mut e = EffectState {
        wake_at_ms: Some(ms - 50),
        ..EffectState::default()
    };
    e.arm_timer(TimerRecord {
        id: "xstate.after(300)#m.a".to_owned(),
        seq: n,
        due_at_ms: ms,
        event: json!({ "type": "xstate.after(300)#m.a" }),
        target: None,
        attempts: 0,
        next_attempt_at_ms: None,
    });
    e.arm_timer(TimerRecord {
        id: "ping".to_owned(),
        seq: n,
        due_at_ms: ms - 50,
        event: json!({ "type": "PING", "n": n, "text": "ünï" }),
        target: Some(json!({
            "kind": "instance",
            "machineName": "other",
            "machineInstanceName": format!("o{n}"),
        })),
        attempts: 2,
        next_attempt_at_ms: Some(ms + 30_000),
    });
    e.start_service(ServiceMarker {
        id: "fetchUser".to_owned(),
        src: "fetchUser".to_owned(),
        started_version: n,
        state: ServiceState::Started,
    });
    e.start_service(ServiceMarker {
        id: "hang".to_owned(),
        src: "hanging".to_owned(),
        started_version: n.saturating_sub(1),
        state: ServiceState::Interrupted,
    });
    e.queue(OutboxMessage {
        id: format!("{n}:0"),
        to: json!({ "kind": "parent" }),
        event: json!({ "type": "HELLO" }),
        attempts: 0,
        next_attempt_at_ms: None,
        kind: OutboxKind::Send,
    });
    e.queue(OutboxMessage {
        id: format!("{n}:1"),
        to: json!({ "kind": "instance", "machineName": "child", "machineInstanceName": "c1" }),
        event: serde_json::Value::Null,
        attempts: 4,
        next_attempt_at_ms: Some(ms + 1),
        kind: OutboxKind::SpawnInstance {
            context: json!({ "owner": "p", "list": [1, 2, 3] }),
            machine_version_id: Some("ver_child".to_owned()),
        },
    });
    e.record_received(&format!("sender/s1#{n}:0"));
    e.record_received("sender/s2#9:3");
    e.parent = Some(instance_key(
        &MachineName::parse("parent").expect("valid name"),
        &format!("p{n}"),
    ));
    e
}

fn commit_with(key: &InstanceKey, expect: Expect, version: u64, effects: EffectState) -> Commit {
    let mut next = instance_record(version);
    next.effects = effects;
    Commit {
        key: key.clone(),
        expect,
        next,
        transition: Some(transition_record(version)),
    }
}

async fn applied(store: &Arc<dyn Store>, c: Commit) {
    let version = c.next.version;
    let outcome = store.commit(c).await.expect("commit succeeds");
    assert_eq!(outcome, CasOutcome::Applied { version });
}

/// Timers, markers, outbox, received ids and the wake time read back exactly as committed,
/// through both kinds of read, as they change and when they are cleared.
pub async fn effect_state_round_trips_exactly(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("effects"), "a");
    let steps = [
        full_effects(1),
        full_effects(2),
        EffectState {
            received: vec!["only/received#1:0".to_owned()],
            ..EffectState::default()
        },
        EffectState::default(),
    ];
    for (i, effects) in steps.into_iter().enumerate() {
        let version = i as u64 + 1;
        let expect = match version {
            1 => Expect::Absent,
            v => Expect::Version(v - 1),
        };
        let c = commit_with(&key, expect, version, effects);
        let written = c.next.clone();
        applied(store, c).await;
        let read = store.load_instance(&key).await.unwrap();
        assert_eq!(read.as_ref(), Some(&written), "version {version}");
        let settled = store.load_instance_linearizable(&key).await.unwrap();
        assert_eq!(settled, Some(written), "version {version}, linearizable");
    }
}

/// An effect-only write (a failed attempt recorded, a marker interrupted) is a commit without
/// a transition and with the same `ts_ms`: the version moves, the history does not.
pub async fn effect_only_writes_move_the_version_but_not_the_history(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("effonly"), "a");
    let first = commit_with(&key, Expect::Absent, 1, full_effects(1));
    let mut record = first.next.clone();
    applied(store, first).await;

    let mut effects = record.effects.clone();
    effects
        .timer_mut("ping", 1)
        .expect("armed by the create")
        .attempts += 1;
    effects.interrupt_services();
    record.version = 2;
    record.write_id = uuid::Uuid::new_v4();
    record.updated_at_ms += 7;
    record.effects = effects;
    let effect_only = Commit {
        key: key.clone(),
        expect: Expect::Version(1),
        next: record.clone(),
        transition: None,
    };
    applied(store, effect_only).await;
    let read = store.load_instance(&key).await.unwrap().expect("stored");
    assert_eq!(read, record);
    assert_eq!(read.ts_ms, instance_record(1).ts_ms, "ts does not move");
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    assert_eq!(history.unwrap().items, vec![transition_record(1)]);

    let stale = commit_with(&key, Expect::Version(1), 2, EffectState::default());
    let outcome = store.commit(stale).await.expect("commit succeeds");
    assert_eq!(
        outcome,
        CasOutcome::Conflict { current: Some(2) },
        "the effect-only write took the version"
    );
    applied(
        store,
        commit_with(&key, Expect::Version(2), 3, full_effects(3)),
    )
    .await;
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    let versions: Vec<u64> = history.unwrap().items.iter().map(|t| t.version).collect();
    assert_eq!(versions, [3, 1]);
}
