//! Sends between instances and persistent children through the public API: a parent spawns
//! a child, the child talks back with `sendParent`, receivers authorize with
//! `authContext.stateBackedSender`, duplicates are applied once, and undeliverable messages
//! are dropped after their attempts.

mod effects_support;
mod http_support;

use std::time::{Duration, Instant};

use effects_support::machines::{KID, KID_V5, PARENT};
use effects_support::{
    context, create, deploy, effects, history, key, record, send, send_ok, server, server_with,
    transitions, wait_for_state, RETRY_MS,
};
use http_support::{within, TestServer};
use serde_json::json;
use statewire::server::Extensions;

const SETTLED: Duration = Duration::from_secs(5);

async fn wait_until_created(s: &TestServer, machine: &str, instance: &str) {
    let started = Instant::now();
    loop {
        let r = s
            .admin()
            .get(&format!("/machines/{machine}/i/{instance}"))
            .await;
        if r.status == 200 {
            return;
        }
        assert!(
            started.elapsed() < SETTLED,
            "{machine}/{instance} was never created"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_persistent_child_is_spawned_and_its_send_parent_reaches_the_parent() {
    within(180, spawn_and_hear_back(KID)).await;
}

#[tokio::test]
async fn an_xstate_5_child_reaches_its_parent_with_send_parent() {
    within(180, spawn_and_hear_back(KID_V5)).await;
}

async fn spawn_and_hear_back(kid_code: &str) {
    let s = server().await;
    deploy(&s, "parent", PARENT).await;
    deploy(&s, "kid", kid_code).await;
    create(&s, "parent", "p-1").await;
    assert_eq!(
        send_ok(&s, "parent", "p-1", json!({"type": "SPAWN"})).await,
        "waiting"
    );

    wait_until_created(&s, "kid", "kid-1").await;
    assert_eq!(context(&s, "kid", "kid-1").await["greeting"], "hi");
    let kid = record(s.store().as_ref(), "kid", "kid-1").await;
    assert_eq!(
        kid.effects.parent,
        Some(key("parent", "p-1")),
        "the parent is durable"
    );

    // The parent sends to the child by its reference; the child answers its parent.
    send_ok(&s, "parent", "p-1", json!({"type": "POKE"})).await;
    wait_for_state(&s, "kid", "kid-1", &json!("greeted"), SETTLED).await;
    wait_for_state(&s, "parent", "p-1", &json!("greeted"), SETTLED).await;
    assert_eq!(context(&s, "parent", "p-1").await["from"], "hi");
    assert_eq!(
        history(&s, "parent", "p-1").await,
        ["SPAWN", "POKE", "HELLO"]
    );
    assert_eq!(history(&s, "kid", "kid-1").await, ["GREET"]);

    // Only the child may say HELLO: the same event from a user is refused.
    let r = send(&s, "parent", "p-1", json!({"type": "HELLO", "from": "me"})).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.code(), "rejected-by-machine-authorizer");

    let parent = effects(s.store().as_ref(), "parent", "p-1").await;
    assert!(parent.outbox.is_empty() && parent.wake_at_ms.is_none());
    assert_eq!(parent.received.len(), 1, "{:?}", parent.received);
    assert!(parent.received[0].starts_with("kid/kid-1#"));
    assert!(effects(s.store().as_ref(), "kid", "kid-1")
        .await
        .outbox
        .is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn a_delayed_send_to_the_parent_goes_out_when_due() {
    within(180, async {
        let s = server().await;
        let slow = KID.replace(
            "sendParent((c) => ({ type: \"HELLO\", from: c.greeting }))",
            "sendParent((c) => ({ type: \"HELLO\", from: c.greeting }), { delay: 200 })",
        );
        assert_ne!(slow, KID);
        deploy(&s, "parent", PARENT).await;
        deploy(&s, "kid", &slow).await;
        create(&s, "parent", "p-1").await;
        send_ok(&s, "parent", "p-1", json!({"type": "SPAWN"})).await;
        wait_until_created(&s, "kid", "kid-1").await;
        send_ok(&s, "kid", "kid-1", json!({"type": "GREET"})).await;
        let timer = effects(s.store().as_ref(), "kid", "kid-1").await.timers[0].clone();
        assert_eq!(timer.target, Some(json!({"kind": "parent"})));

        wait_for_state(&s, "parent", "p-1", &json!("greeted"), SETTLED).await;
        let hello = transitions(s.store().as_ref(), "parent", "p-1").await[1].clone();
        assert_eq!(hello.event, json!({"type": "HELLO", "from": "hi"}));
        assert!(hello.created_at_ms >= timer.due_at_ms, "never early");
        let kid = effects(s.store().as_ref(), "kid", "kid-1").await;
        assert!(kid.timers.is_empty() && kid.outbox.is_empty(), "{kid:?}");
        assert_eq!(kid.wake_at_ms, None);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_message_delivered_twice_at_once_is_applied_once() {
    within(180, async {
        let manual = Extensions {
            manual_timers: true,
            ..Extensions::default()
        };
        let s = server_with(|_| {}, manual).await;
        deploy(&s, "parent", PARENT).await;
        deploy(&s, "kid", KID).await;
        create(&s, "parent", "p-1").await;
        send_ok(&s, "parent", "p-1", json!({"type": "SPAWN"})).await;
        let registry = s.running().registry();
        // Nothing goes out by itself here; the spawn goes when asked, twice at once.
        let (a, b) = tokio::join!(
            registry.deliver_due(key("parent", "p-1")),
            registry.deliver_due(key("parent", "p-1")),
        );
        assert_eq!((a.unwrap(), b.unwrap()), (None, None));
        assert_eq!(
            send_ok(&s, "kid", "kid-1", json!({"type": "GREET"})).await,
            "greeted"
        );
        assert_eq!(
            effects(s.store().as_ref(), "kid", "kid-1")
                .await
                .outbox
                .len(),
            1
        );

        let (a, b) = tokio::join!(
            registry.deliver_due(key("kid", "kid-1")),
            registry.deliver_due(key("kid", "kid-1")),
        );
        assert_eq!((a.unwrap(), b.unwrap()), (None, None));
        assert_eq!(history(&s, "parent", "p-1").await, ["SPAWN", "HELLO"]);
        assert!(effects(s.store().as_ref(), "kid", "kid-1")
            .await
            .outbox
            .is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_child_of_an_unknown_machine_is_given_up_after_five_attempts() {
    within(180, async {
        let s = server().await;
        let orphan = PARENT.replace(r#"machineName: "kid""#, r#"machineName: "ghost""#);
        deploy(&s, "parent", &orphan).await;
        create(&s, "parent", "lonely").await;
        send_ok(&s, "parent", "lonely", json!({"type": "SPAWN"})).await;
        let queued_at = statewire::clock::now_ms();
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let e = effects(s.store().as_ref(), "parent", "lonely").await;
            let Some(m) = e.outbox.first() else { break };
            if seen.last() != Some(&m.attempts) {
                seen.push(m.attempts);
            }
            assert!(started.elapsed() < SETTLED, "still queued: {m:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
        assert!(statewire::clock::now_ms() - queued_at >= 4 * RETRY_MS as i64);
        let r = s.admin().get("/machines/ghost/i/kid-1").await;
        assert_eq!(r.status, 404);
        assert_eq!(history(&s, "parent", "lonely").await, ["SPAWN"]);
        s.shutdown().await;
    })
    .await;
}

/// Spawns the persistent child `rec-1` (machine `rec`) on `SPAWN`, then passes each `TELL`
/// it gets on to that child.
const TELLER: &str = r#"
import { assign, createMachine, send } from "npm:xstate";

export default createMachine({
  id: "teller",
  predictableActionArguments: true,
  initial: "idle",
  context: {},
  states: {
    idle: {
      on: {
        SPAWN: {
          target: "telling",
          actions: assign({
            rec: () =>
              globalThis.__statebacked_rt.spawn(
                { machineName: "rec", machineInstanceName: "rec-1" },
                { name: "rec", context: { got: [] } },
              ),
          }),
        },
      },
    },
    telling: {
      on: { TELL: { actions: send((_, e) => ({ type: "TELL", n: e.n }), { to: (c) => c.rec }) } },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// Remembers the `n` of every `TELL`, in the order it applied them.
const REC: &str = r#"
import { assign, createMachine } from "npm:xstate";

export default createMachine({
  id: "rec",
  predictableActionArguments: true,
  initial: "on",
  context: { got: [] },
  states: {
    on: { on: { TELL: { actions: assign({ got: (c, e) => [...c.got, e.n] }) } } },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

#[tokio::test]
async fn a_later_message_waits_for_an_earlier_one_to_the_same_receiver() {
    within(180, async {
        // A long retry interval: the first message's retry comes well after the second send.
        let s = server_with(|c| c.effects.retry_interval_ms = 600, Extensions::default()).await;
        deploy(&s, "teller", TELLER).await;
        deploy(&s, "rec", REC).await;
        create(&s, "teller", "t").await;
        send_ok(&s, "teller", "t", json!({"type": "SPAWN"})).await;
        wait_until_created(&s, "rec", "rec-1").await;
        let status = "/machines/rec/i/rec-1/status";

        let r = s.admin().put(status, &json!({"status": "paused"})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        send_ok(&s, "teller", "t", json!({"type": "TELL", "n": 1})).await;
        let started = Instant::now();
        loop {
            let outbox = effects(s.store().as_ref(), "teller", "t").await.outbox;
            if outbox.first().is_some_and(|m| m.attempts == 1) {
                break;
            }
            assert!(
                started.elapsed() < SETTLED,
                "first attempt not made: {outbox:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = s.admin().put(status, &json!({"status": "running"})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        send_ok(&s, "teller", "t", json!({"type": "TELL", "n": 2})).await;

        let started = Instant::now();
        loop {
            let got = context(&s, "rec", "rec-1").await["got"].clone();
            if got.as_array().is_some_and(|g| g.len() == 2) {
                assert_eq!(got, json!([1, 2]), "applied out of order");
                break;
            }
            assert!(started.elapsed() < SETTLED, "not delivered: {got}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(effects(s.store().as_ref(), "teller", "t")
            .await
            .outbox
            .is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn messages_after_one_that_is_dropped_go_on_in_order() {
    within(180, async {
        let interval = 100;
        let s = server_with(
            |c| c.effects.retry_interval_ms = interval,
            Extensions::default(),
        )
        .await;
        // This receiver never takes `n: 1`: that message is dropped after its fifth attempt.
        let picky = REC.replace(
            "export const allowWrite = () => true;",
            "export const allowWrite = ({ event }) => !(event && event.n === 1);",
        );
        deploy(&s, "teller", TELLER).await;
        deploy(&s, "rec", &picky).await;
        create(&s, "teller", "t").await;
        send_ok(&s, "teller", "t", json!({"type": "SPAWN"})).await;
        wait_until_created(&s, "rec", "rec-1").await;

        send_ok(&s, "teller", "t", json!({"type": "TELL", "n": 1})).await;
        let first_sent = Instant::now();
        send_ok(&s, "teller", "t", json!({"type": "TELL", "n": 2})).await;
        send_ok(&s, "teller", "t", json!({"type": "TELL", "n": 3})).await;
        loop {
            let got = context(&s, "rec", "rec-1").await["got"].clone();
            if got.as_array().is_some_and(|g| !g.is_empty()) {
                let waited = first_sent.elapsed();
                println!("later messages went after {waited:?}");
                // Not before the first message's last attempt (four intervals after its first).
                assert!(
                    waited >= Duration::from_millis(4 * interval),
                    "went early: {got}"
                );
                break;
            }
            assert!(first_sent.elapsed() < SETTLED, "never delivered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        while !effects(s.store().as_ref(), "teller", "t")
            .await
            .outbox
            .is_empty()
        {
            assert!(started.elapsed() < SETTLED, "outbox not emptied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(context(&s, "rec", "rec-1").await["got"], json!([2, 3]));
        s.shutdown().await;
    })
    .await;
}
