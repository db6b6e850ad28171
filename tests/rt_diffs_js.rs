//! The diff property end to end, with a JavaScript (XState 4) machine whose state value,
//! tags and public context change in arbitrary ways: a diff subscriber that applies what it
//! receives, including across reconnects with resume, always ends up with exactly the state
//! HTTP reports.

mod http_support;
mod rt_support;

use http_support::{machines, within, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use rt_support::{view, DiffView, WsClient};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `PUT` replaces the public context with the event's `public`; the `GO_*` events also move
/// between a flat state, a tagged one and a compound one (whose value is an object).
const DOC: &str = r#"
import { assign, createMachine } from "npm:xstate";

const put = assign({ public: (_, event) => event.public });

export default createMachine({
  id: "doc",
  predictableActionArguments: true,
  initial: "a",
  context: { public: {} },
  on: {
    PUT: { actions: put },
    GO_A: { target: ".a", actions: put },
    GO_B: { target: ".b", actions: put },
    GO_C: { target: ".c", actions: put },
  },
  states: {
    a: {},
    b: { tags: ["middle", "second"] },
    c: {
      initial: "x",
      states: {
        x: { on: { NEXT: { target: "y", actions: put } } },
        y: { tags: ["deep"], on: { NEXT: { target: "x", actions: put } } },
      },
    },
  },
});

export function allowRead({ machineInstanceName, authContext }) {
  return authContext.sub === machineInstanceName;
}

export function allowWrite({ machineInstanceName, authContext }) {
  return authContext.sub === machineInstanceName;
}
"#;

#[derive(Debug, Clone)]
enum Step {
    Event(&'static str, Value),
    Reconnect,
}

/// JSON the way contexts hold it: nested objects and arrays of small integers, strings (keys
/// with `/` and `~` included), booleans and null.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        "[a-c~/]{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-c~/]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn public() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]{1,2}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (prop::sample::select(vec!["PUT", "GO_A", "GO_B", "GO_C", "NEXT"]), public())
            .prop_map(|(kind, public)| Step::Event(kind, public)),
        1 => Just(Step::Reconnect),
    ]
}

async fn subscribe(s: &TestServer, token: &str, name: &str, held: &DiffView) -> WsClient {
    let mut ws = WsClient::connect(s.running().addr(), token).await;
    let mut message = json!({"type": "subscribe-to-instance", "requestId": "d",
        "machineName": "doc", "machineInstanceName": name, "diffs": true});
    if let (Some(seq), Some(ts)) = (held.seq, held.ts) {
        message["lastSeq"] = seq.into();
        message["lastTs"] = ts.into();
    }
    ws.send(message).await;
    ws
}

/// One case: a fresh instance, the steps, then the diff client must hold what HTTP says.
/// Returns how many patches the client applied.
async fn run_case(s: &TestServer, case: usize, steps: Vec<Step>) -> Result<usize, TestCaseError> {
    let name = format!("doc{case}");
    let token = s.token(rt_support::USER_SCOPES, json!({"sub": name})).await;
    let mut latest = s
        .client
        .authed(&token)
        .post("/machines/doc", &json!({"slug": name}))
        .await
        .json();
    let mut client = DiffView::default();
    let mut ws = subscribe(s, &token, &name, &client).await;
    let mut sender = WsClient::connect(s.running().addr(), &token).await;
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Step::Event(kind, public) => {
                let reply = sender
                    .command(
                        json!({"type": "send-event", "machineName": "doc",
                            "machineInstanceName": name, "event": {"type": kind, "public": public}}),
                        &i.to_string(),
                    )
                    .await;
                prop_assert_eq!(&reply["type"], "reply", "{}", reply);
                latest = reply["body"].clone();
            }
            Step::Reconnect => {
                // Take what has arrived, then drop the socket and resume from there.
                drain_until_quiet(&mut ws, &mut client).await;
                drop(ws);
                ws = subscribe(s, &token, &name, &client).await;
            }
        }
    }
    while client.ts != latest["ts"].as_i64() {
        client.receive(&ws.next_json().await);
    }
    prop_assert_eq!(client.view, Some(view(&latest)));
    let http = s
        .client
        .authed(&token)
        .get(&format!("/machines/doc/i/{name}"))
        .await
        .json();
    prop_assert_eq!(view(&http), view(&latest));
    Ok(client.patches)
}

async fn drain_until_quiet(ws: &mut WsClient, client: &mut DiffView) {
    while let Ok(Some(Ok(message))) = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        futures_util::StreamExt::next(&mut ws.ws),
    )
    .await
    {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            client.receive(&serde_json::from_str(&text).unwrap());
        }
    }
}

#[test]
fn diffs_applied_in_order_reproduce_the_state_of_a_javascript_machine() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(within(120, async {
        let s = TestServer::start().await;
        machines::machine_with_version(&s, "doc", DOC.as_bytes()).await;
        s
    }));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let cases = AtomicUsize::new(0);
    let patches = AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(step(), 1..16), |steps| {
        let case = cases.fetch_add(1, Ordering::Relaxed);
        let applied = rt.block_on(within(120, run_case(&server, case, steps)))?;
        patches.fetch_add(applied, Ordering::Relaxed);
        Ok(())
    });
    rt.block_on(server.shutdown());
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        patches.into_inner() > 0,
        "the cases exercised patches, not only full updates"
    );
}
