use serde_json::json;

use super::*;

fn decoded(v: serde_json::Value) -> Envelope {
    decode(&v.to_string())
}

fn parameter(envelope: Envelope) -> Option<String> {
    envelope.request.unwrap_err().parameter().map(str::to_owned)
}

#[test]
fn the_official_clients_messages_decode() {
    let sub = decoded(json!({
        "type": "subscribe-to-instance", "requestId": "abc123",
        "machineName": "toggle", "machineInstanceName": "user-1",
    }));
    assert_eq!(sub.request_id.as_deref(), Some("abc123"));
    let Ok(Request::Subscribe(s)) = sub.request else {
        panic!("{:?}", sub.request)
    };
    assert_eq!(s.key.to_string(), "toggle/user-1");
    assert!(!s.diffs);
    assert_eq!(s.resume_from, None);

    let unsub = decoded(json!({
        "type": "unsubscribe-from-instance", "requestId": "abc123",
        "machineName": "toggle", "machineInstanceName": "user-1",
    }));
    assert!(matches!(unsub.request, Ok(Request::Unsubscribe(_))));
    assert!(matches!(
        decoded(json!({"type": "ping"})).request,
        Ok(Request::Ping)
    ));
}

#[test]
fn a_resuming_diff_subscriber_gives_its_last_sequence() {
    let sub = decoded(json!({
        "type": "subscribe-to-instance", "requestId": "r",
        "machineName": "m", "machineInstanceName": "i",
        "diffs": true, "lastSeq": 17, "lastTs": 1_700_000_000_000i64,
    }));
    let Ok(Request::Subscribe(s)) = sub.request else {
        panic!()
    };
    assert!(s.diffs);
    assert_eq!(
        s.resume_from,
        Some(Base {
            seq: 17,
            ts_ms: Some(1_700_000_000_000)
        })
    );
    // lastSeq without diffs means nothing.
    let plain = decoded(json!({
        "type": "subscribe-to-instance", "machineName": "m", "machineInstanceName": "i",
        "lastSeq": 17,
    }));
    let Ok(Request::Subscribe(s)) = plain.request else {
        panic!()
    };
    assert_eq!(s.resume_from, None);
}

#[test]
fn commands_decode_with_the_http_bodies_rules() {
    let create = decoded(json!({
        "type": "create-instance", "requestId": "1", "machineName": "m",
        "machineInstanceName": "i", "context": {"a": 1},
    }));
    assert_eq!(
        create.request.unwrap(),
        Request::Command(Command::Create {
            key: InstanceKey::new(
                MachineName::parse("m").unwrap(),
                InstanceName::parse("i").unwrap()
            ),
            context: json!({"a": 1}),
            version: None,
        })
    );
    let send = decoded(json!({
        "type": "send-event", "requestId": "2", "machineName": "m",
        "machineInstanceName": "i", "event": "toggle",
    }));
    let Ok(Request::Command(Command::SendEvent { event, .. })) = send.request else {
        panic!()
    };
    assert_eq!(event, json!({"type": "toggle"}));
}

#[test]
fn invalid_messages_name_the_offending_field_and_keep_the_request_id() {
    let cases = [
        (
            json!({"type": "subscribe-to-instance", "requestId": "x", "machineName": "m"}),
            "machineInstanceName",
        ),
        (
            json!({"type": "subscribe-to-instance", "requestId": "x", "machineName": "bad name", "machineInstanceName": "i"}),
            "machineName",
        ),
        (
            json!({"type": "subscribe-to-instance", "requestId": "x", "machineName": "m", "machineInstanceName": "i", "diffs": "yes"}),
            "diffs",
        ),
        (
            json!({"type": "subscribe-to-instance", "requestId": "x", "machineName": "m", "machineInstanceName": "i", "diffs": true, "lastSeq": -1}),
            "lastSeq",
        ),
        (
            json!({"type": "send-event", "requestId": "x", "machineName": "m", "machineInstanceName": "i"}),
            "event",
        ),
        (
            json!({"type": "create-instance", "requestId": "x", "machineName": "m", "machineInstanceName": "i", "context": [1]}),
            "context",
        ),
        (json!({"type": "launch-rockets", "requestId": "x"}), "type"),
        (json!({"requestId": "x"}), "type"),
    ];
    for (message, field) in cases {
        let envelope = decoded(message.clone());
        assert_eq!(envelope.request_id.as_deref(), Some("x"), "{message}");
        assert_eq!(parameter(envelope).as_deref(), Some(field), "{message}");
    }
}

#[test]
fn frames_that_are_not_json_objects_are_malformed() {
    for text in ["", "{", "[1,2]", "\"ping\"", "null"] {
        let envelope = decode(text);
        assert!(envelope.request_id.is_none());
        let err = envelope.request.unwrap_err();
        assert_eq!(err.class().code, "invalid-parameter", "{text:?}");
        assert_eq!(err.class().status.as_u16(), 400, "{text:?}");
        let said = err.to_string();
        assert!(said.starts_with("message is not "), "{text:?}: {said}");
        assert!(!said.contains("request body"), "{text:?}: {said}");
    }
    let envelope = decoded(json!({"type": "ping", "requestId": 7}));
    assert_eq!(parameter(envelope).as_deref(), Some("requestId"));
}

#[test]
fn errors_carry_the_http_status_and_code() {
    let frame = error(Some("r1"), &ApiError::RejectedByAuthorizer);
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["requestId"], "r1");
    assert_eq!(v["status"], 403);
    assert_eq!(v["code"], "rejected-by-machine-authorizer");
    let frame = error(None, &ApiError::invalid("lastSeq", "bad"));
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert!(v.get("requestId").is_none());
    assert_eq!(v["parameter"], "lastSeq");
}

#[test]
fn replies_wrap_the_http_body() {
    let frame = reply(Some("r2"), json!({"ts": 1, "state": "on"}));
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        v,
        json!({"type": "reply", "requestId": "r2", "status": 200, "body": {"ts": 1, "state": "on"}})
    );
}
