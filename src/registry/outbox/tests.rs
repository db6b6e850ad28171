use serde_json::json;

use super::*;
use crate::registry::RetryPolicy;

fn key(machine: &str, instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse(machine).unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

fn message(id: &str) -> OutboxMessage {
    OutboxMessage {
        id: id.to_owned(),
        to: json!({"kind": "parent"}),
        event: json!({"type": "HELLO"}),
        attempts: 0,
        next_attempt_at_ms: None,
        kind: OutboxKind::Send,
    }
}

const POLICY: RetryPolicy = RetryPolicy {
    interval_ms: 1_000,
    max_attempts: 3,
};

#[test]
fn addresses_resolve_to_the_recorded_parent_or_a_named_instance() {
    let mut effects = EffectState::default();
    let parent = json!({"kind": "parent"});
    assert!(resolve(&parent, &effects).is_err(), "no parent recorded");
    effects.parent = Some(key("p", "one"));
    assert_eq!(resolve(&parent, &effects), Ok(key("p", "one")));
    let instance = json!({"kind": "instance", "machineName": "m", "machineInstanceName": "i"});
    assert_eq!(resolve(&instance, &effects), Ok(key("m", "i")));
    let bad = json!({"kind": "instance", "machineName": "m/x", "machineInstanceName": "i"});
    assert!(resolve(&bad, &effects).is_err());
    assert!(resolve(&json!({"kind": "child", "id": "c"}), &effects).is_err());
}

#[test]
fn delivered_messages_go_and_failed_ones_count_an_attempt() {
    let mut effects = EffectState::default();
    effects.queue(message("1:0"));
    effects.queue(message("1:1"));
    effects.queue(message("1:2"));
    let fates = [
        ("1:0".to_owned(), Fate::Delivered),
        ("1:1".to_owned(), Fate::Failed("refused".into())),
        ("1:2".to_owned(), Fate::Deferred(77)),
    ];
    let (settled, report) = settle(&effects, &fates, POLICY);
    assert_eq!(report.len(), 2, "the deferred one is not reported");
    assert_eq!(report[1].failed, Some((1, false)));
    let ids: Vec<&str> = settled.outbox.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["1:1", "1:2"]);
    let failed = &settled.outbox[0];
    assert_eq!(failed.attempts, 1);
    assert!(failed.next_attempt_at_ms.unwrap() >= now_ms() + 990);
    let deferred = &settled.outbox[1];
    assert_eq!(deferred.attempts, 0, "waiting is not an attempt");
    assert_eq!(deferred.next_attempt_at_ms, Some(77));
}

#[test]
fn the_last_attempt_drops_the_message_and_gone_messages_are_skipped() {
    let mut effects = EffectState::default();
    let mut tired = message("2:0");
    tired.attempts = 2;
    effects.queue(tired);
    let fates = [
        ("2:0".to_owned(), Fate::Failed("missing".into())),
        ("9:9".to_owned(), Fate::Delivered),
    ];
    let (settled, report) = settle(&effects, &fates, POLICY);
    assert!(settled.outbox.is_empty());
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].failed, Some((3, true)));
    assert!(report[0].reason.contains("missing"));
}

#[test]
fn the_sender_identity_is_state_backeds_shape() {
    assert_eq!(
        sender_auth(&key("kid", "k-1")),
        json!({"stateBackedSender": {"machineName": "kid", "machineInstanceName": "k-1"}})
    );
}
