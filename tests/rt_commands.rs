//! Commands over the socket (`create-instance`, `send-event`, `get-instance`): the same
//! bodies, status codes and error codes as the HTTP routes.

mod http_support;
mod rt_support;

use http_support::within;
use rt_support::{toggle_server, user, WsClient};
use serde_json::json;

#[tokio::test]
async fn create_send_and_get_over_the_socket_answer_what_http_answers() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;

        let created = ws
            .command(json!({"type": "create-instance", "machineInstanceName": "a", "context": {"secret": 1}}), "c1")
            .await;
        assert_eq!(created["type"], "reply");
        assert_eq!(created["status"], 200);
        assert_eq!(created["body"]["state"], "off");
        assert!(created["body"]["publicContext"].get("secret").is_none());

        let sent = ws
            .command(json!({"type": "send-event", "machineInstanceName": "a", "event": "toggle"}), "c2")
            .await;
        assert_eq!(sent["body"]["state"], "on");
        assert!(sent["body"]["ts"].as_i64() > created["body"]["ts"].as_i64());

        let got = ws
            .command(json!({"type": "get-instance", "machineInstanceName": "a"}), "c3")
            .await;
        let http = s.client.authed(&token).get("/machines/toggle/i/a").await;
        assert_eq!(got["body"], http.json(), "same body as GET /machines/toggle/i/a");
        assert_eq!(got["body"], sent["body"]);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn command_errors_carry_the_http_status_and_code() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.command(json!({"type": "create-instance", "machineInstanceName": "a"}), "c0").await;

        let cases = [
            (json!({"type": "create-instance", "machineInstanceName": "a"}), 409, "invalid-state"),
            (json!({"type": "send-event", "machineInstanceName": "nope", "event": "toggle"}), 404, "not-found"),
            (json!({"type": "get-instance", "machineInstanceName": "nope"}), 404, "not-found"),
            (json!({"type": "send-event", "machineInstanceName": "a", "event": {"no": "type"}}), 400, "invalid-parameter"),
            (json!({"type": "create-instance", "machineInstanceName": "a", "machineVersionId": "v1"}), 400, "invalid-parameter"),
        ];
        for (i, (command, status, code)) in cases.into_iter().enumerate() {
            let id = format!("e{i}");
            let reply = ws.command(command.clone(), &id).await;
            assert_eq!(reply["type"], "error", "{command}");
            assert_eq!(reply["status"], status, "{command}: {reply}");
            assert_eq!(reply["code"], code, "{command}: {reply}");
        }

        // The authorizer sees the token's authContext, as over HTTP.
        let stranger = user(&s, "b").await;
        let mut other = WsClient::connect(s.running().addr(), &stranger).await;
        let refused = other
            .command(json!({"type": "send-event", "machineInstanceName": "a", "event": "toggle"}), "x")
            .await;
        assert_eq!((refused["status"].clone(), refused["code"].clone()), (json!(403), json!("rejected-by-machine-authorizer")));

        let reader = s.token(&["state.read"], json!({"sub": "a"})).await;
        let mut read_only = WsClient::connect(s.running().addr(), &reader).await;
        let refused = read_only
            .command(json!({"type": "send-event", "machineInstanceName": "a", "event": "toggle"}), "y")
            .await;
        assert_eq!((refused["status"].clone(), refused["code"].clone()), (json!(403), json!("missing-scope")));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn one_socket_carries_commands_and_the_updates_they_cause() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.command(json!({"type": "create-instance", "machineInstanceName": "a"}), "c").await;
        ws.subscribe("a", "sub").await;
        assert_eq!(ws.next_json().await["state"], "off");

        ws.send(json!({"type": "send-event", "requestId": "e", "machineName": "toggle", "machineInstanceName": "a", "event": "toggle"})).await;
        let mut got_reply = false;
        let mut got_update = false;
        while !(got_reply && got_update) {
            let frame = ws.next_json().await;
            match frame["type"].as_str() {
                Some("reply") => {
                    assert_eq!(frame["requestId"], "e");
                    got_reply = true;
                }
                Some("instance-update") => {
                    assert_eq!(frame["state"], "on");
                    got_update = true;
                }
                _ => panic!("unexpected {frame}"),
            }
        }
        s.shutdown().await;
    })
    .await;
}
