//! One machine stuck in endless loops must not stall the other machines of the server.
//!
//! Two workers, a 500 ms call deadline. Eight instances of the ledger machine
//! (`tests/fixtures/machines/ledger.js`) are sent `spin`, an event whose action never returns,
//! all at once; meanwhile another machine's event must still be answered within two deadlines
//! (without limits the loops would hold both workers for four). Each looping instance answers
//! a clear error and keeps its state, and the ledger works normally afterwards.

mod http_support;

use std::time::{Duration, Instant};

use http::StatusCode;
use http_support::client::Client;
use http_support::{machines, within, TestServer};
use serde_json::{json, Value};

const LEDGER: &str = include_str!("fixtures/machines/ledger.js");
const DEADLINE: Duration = Duration::from_millis(500);
const LOOPING: usize = 8;
const SCOPES: &[&str] = &["instances.write", "state.read"];

/// A lamp anyone may flip; the machine that must stay responsive.
const LAMP: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "lamp",
  predictableActionArguments: true,
  initial: "dark",
  states: {
    dark: { on: { FLIP: "lit" } },
    lit: { on: { FLIP: "dark" } },
  },
});

export function allowRead() {
  return true;
}

export function allowWrite() {
  return true;
}
"#;

async fn post(client: Client, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client.authed(token).post(path, &body).await;
    (r.status, r.json())
}

#[tokio::test]
async fn a_looping_machine_leaves_a_worker_for_the_others() {
    within(120, async {
        let s = TestServer::start_with(
            |c| {
                c.runtime.workers = 2;
                c.runtime.call_deadline_ms = DEADLINE.as_millis() as u64;
            },
            Default::default(),
        )
        .await;
        machines::machine_with_version(&s, "ledger", LEDGER.as_bytes()).await;
        machines::machine_with_version(&s, "lamp", LAMP.as_bytes()).await;
        let lamp_token = s.token(SCOPES, json!({ "sub": "anyone" })).await;
        let (status, body) = post(
            s.client,
            &lamp_token,
            "/machines/lamp",
            json!({"slug": "hall"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The ledger's authorizers let in only the user named like the instance.
        let mut tokens = Vec::new();
        for i in 0..LOOPING {
            let name = format!("l{i}");
            let token = s.token(SCOPES, json!({ "sub": name })).await;
            let (status, body) =
                post(s.client, &token, "/machines/ledger", json!({"slug": name})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let path = format!("/machines/ledger/i/{name}/events");
            let event = json!({"event": {"type": "add", "id": "first"}});
            let (status, body) = post(s.client, &token, &path, event).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            tokens.push((name, token));
        }

        let fired = Instant::now();
        let loops: Vec<_> = tokens
            .iter()
            .map(|(name, token)| {
                let (client, token) = (s.client, token.clone());
                let path = format!("/machines/ledger/i/{name}/events");
                tokio::spawn(async move {
                    let answer = post(client, &token, &path, json!({"event": "spin"})).await;
                    (answer, fired.elapsed())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = post(
            s.client,
            &lamp_token,
            "/machines/lamp/i/hall/events",
            json!({"event": "FLIP"}),
        )
        .await;
        let lamp_answered = fired.elapsed();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "lit");
        assert!(
            lamp_answered < 2 * DEADLINE,
            "the other machine answered after {lamp_answered:?}"
        );

        let mut codes = Vec::new();
        let mut last_loop = Duration::ZERO;
        for task in loops {
            let ((status, body), elapsed) = task.await.unwrap();
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            let expected = match code.as_str() {
                "machine-timeout" => StatusCode::UNPROCESSABLE_ENTITY,
                "machine-busy" => StatusCode::SERVICE_UNAVAILABLE,
                _ => panic!("a looping event answered {status} {body}"),
            };
            assert_eq!(status, expected, "{body}");
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
            codes.push(code);
            last_loop = last_loop.max(elapsed);
        }
        assert!(
            codes.iter().any(|c| c == "machine-timeout"),
            "some loops ran into the deadline: {codes:?}"
        );
        assert!(
            lamp_answered < last_loop,
            "the lamp ({lamp_answered:?}) answered before the last loop ({last_loop:?})"
        );
        eprintln!(
            "lamp answered after {lamp_answered:?}; loops: {codes:?}, last after {last_loop:?}"
        );

        // Every looping instance kept its state, and takes normal events again.
        for (name, token) in &tokens {
            let r = s
                .client
                .authed(token)
                .get(&format!("/machines/ledger/i/{name}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.json()["publicContext"], json!({"count": 1}), "{name}");
            let path = format!("/machines/ledger/i/{name}/events");
            let event = json!({"event": {"type": "add", "id": "second"}});
            let (status, body) = post(s.client, token, &path, event).await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            assert_eq!(body["publicContext"], json!({"count": 2}), "{name}");
        }
        let (status, body) = post(
            s.client,
            &lamp_token,
            "/machines/lamp/i/hall/events",
            json!({"event": "FLIP"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "dark");
    })
    .await;
}
