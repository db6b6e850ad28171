//! `/rt` as the official client uses it: upgrade with a token, subscribe, updates pushed on
//! every commit, unsubscribe, authorization and error frames.

mod http_support;
mod rt_support;

use std::time::Duration;

use http_support::{within, TestServer};
use rt_support::{create, toggle, toggle_server, user, WsClient};
use serde_json::{json, Value};

fn keys_of(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    keys
}

/// A toggle server where user `a` has created instance `a`, and a connection of `a`'s that
/// has subscribed to it under `request_id` (the answering update not read yet).
async fn subscribed(request_id: &str) -> (TestServer, String, WsClient) {
    let s = toggle_server(|_| {}).await;
    let token = user(&s, "a").await;
    create(&s, &token, "a").await;
    let mut ws = WsClient::connect(s.running().addr(), &token).await;
    ws.subscribe("a", request_id).await;
    (s, token, ws)
}

#[tokio::test]
async fn subscribing_pushes_the_current_state_at_once_with_every_field() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let created = create(&s, &token, "a").await;

        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.subscribe("a", "r1").await;
        let update = ws.next_json().await;
        assert_eq!(
            keys_of(&update),
            [
                "done",
                "machineInstanceName",
                "machineName",
                "publicContext",
                "seq",
                "state",
                "tags",
                "ts",
                "type"
            ]
        );
        assert_eq!(update["type"], "instance-update");
        assert_eq!(update["machineName"], "toggle");
        assert_eq!(update["machineInstanceName"], "a");
        assert_eq!(update["state"], created["state"]);
        assert_eq!(update["publicContext"], created["publicContext"]);
        assert_eq!(update["tags"], created["tags"]);
        assert_eq!(update["done"], created["done"]);
        assert_eq!(
            update["ts"], created["ts"],
            "ts is the record's, as HTTP answers it"
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn updates_caused_by_http_events_arrive_in_order_with_increasing_ts() {
    within(120, async {
        let (s, token, mut ws) = subscribed("r1").await;
        let first = ws.next_json().await;

        let mut replies = Vec::new();
        for _ in 0..10 {
            replies.push(toggle(&s, &token, "a").await);
        }
        let last = replies.last().unwrap().clone();
        let reply_ts: Vec<i64> = replies.iter().map(|r| r["ts"].as_i64().unwrap()).collect();

        let mut previous = first["ts"].as_i64().unwrap();
        let mut seq = first["seq"].as_u64().unwrap();
        loop {
            let update = ws.next_json().await;
            assert_eq!(update["type"], "instance-update");
            let ts = update["ts"].as_i64().unwrap();
            assert!(ts > previous, "ts goes up: {previous} then {ts}");
            assert!(reply_ts.contains(&ts), "each update is a committed state");
            assert!(update["seq"].as_u64().unwrap() > seq);
            previous = ts;
            seq = update["seq"].as_u64().unwrap();
            if ts == last["ts"].as_i64().unwrap() {
                assert_eq!(update["state"], last["state"]);
                assert_eq!(update["publicContext"], last["publicContext"]);
                break;
            }
        }
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unsubscribing_stops_updates() {
    within(120, async {
        let (s, token, mut ws) = subscribed("r1").await;
        ws.next_json().await;
        toggle(&s, &token, "a").await;
        assert_eq!(ws.next_json().await["state"], "on");

        ws.unsubscribe("a", "r1").await;
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await["type"], "pong");
        toggle(&s, &token, "a").await;
        ws.expect_silence(Duration::from_millis(500)).await;
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_second_subscriber_on_the_connection_keeps_the_subscription_until_the_last_unsubscribe() {
    within(120, async {
        let (s, token, mut ws) = subscribed("one").await;
        ws.next_json().await;
        ws.subscribe("a", "two").await;
        assert_eq!(
            ws.next_json().await["type"],
            "instance-update",
            "each subscribe is answered"
        );
        ws.unsubscribe("a", "one").await;
        toggle(&s, &token, "a").await;
        assert_eq!(
            ws.next_json().await["state"],
            "on",
            "one update per commit, not one per listener"
        );
        ws.unsubscribe("a", "two").await;
        toggle(&s, &token, "a").await;
        ws.expect_silence(Duration::from_millis(500)).await;
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_allow_read_refusal_is_an_error_frame_with_the_http_status_and_code() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        create(&s, &user(&s, "a").await, "a").await;
        // The toggle lets a caller read only the instance named like its `sub`.
        let stranger = user(&s, "b").await;
        let mut ws = WsClient::connect(s.running().addr(), &stranger).await;
        ws.subscribe("a", "req-7").await;
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["requestId"], "req-7");
        assert_eq!(error["status"], 403);
        assert_eq!(error["code"], "rejected-by-machine-authorizer");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_instances_are_404_and_tokens_without_state_read_are_403() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "ghost").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.subscribe("ghost", "r").await;
        let error = ws.next_json().await;
        assert_eq!(
            (error["status"].clone(), error["code"].clone()),
            (json!(404), json!("not-found"))
        );

        let writer_only = s.token(&["events.write"], json!({"sub": "ghost"})).await;
        let mut ws = WsClient::connect(s.running().addr(), &writer_only).await;
        ws.subscribe("ghost", "r").await;
        let error = ws.next_json().await;
        assert_eq!(
            (error["status"].clone(), error["code"].clone()),
            (json!(403), json!("missing-scope"))
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_tokens_and_non_websocket_requests_are_refused_before_switching_protocols() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let addr = s.running().addr();
        for url in [
            format!("ws://{addr}/rt"),
            format!("ws://{addr}/rt?token="),
            format!("ws://{addr}/rt?token=not.a.jwt"),
            format!("ws://{addr}/rt?x-statebacked-org-id=org_x"),
        ] {
            let refused = WsClient::connect_url(addr, &url)
                .await
                .err()
                .expect("refused");
            assert_eq!(refused.status, 401, "{url}");
            assert_eq!(refused.body["code"], "unauthorized", "{url}");
        }
        let token = user(&s, "a").await;
        let plain_get = s
            .client
            .authed(&token)
            .get(&format!("/rt?token={token}"))
            .await;
        assert_eq!(plain_get.status, 400);
        assert_eq!(plain_get.json()["code"], "invalid-parameter");
        // The org id parameter the official client may add is accepted.
        let url = format!("ws://{addr}/rt?token={token}&x-statebacked-org-id=org_abc");
        assert!(WsClient::connect_url(addr, &url).await.is_ok());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn deleting_the_instance_ends_its_subscriptions_with_a_404_error() {
    within(120, async {
        let (s, token, mut ws) = subscribed("sub-1").await;
        ws.next_json().await;

        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"toggle").unwrap();
        mac.update(b"a");
        let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let deleted = s
            .admin()
            .delete(
                "/machines/toggle/i/a",
                &json!({"dangerDataWillBeDeletedForever": true, "hmacSha256OfMachineInstanceNameWithMachineNameKey": hmac}),
            )
            .await;
        assert_eq!(deleted.status, 204, "{:?}", deleted.body);
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["requestId"], "sub-1");
        assert_eq!(error["status"], 404);

        // A new instance of the same name is a fresh subscription's business only.
        create(&s, &token, "a").await;
        toggle(&s, &token, "a").await;
        ws.expect_silence(Duration::from_millis(500)).await;
        s.shutdown().await;
    })
    .await;
}
