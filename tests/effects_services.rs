//! Invoked services through the public HTTP API, with real JavaScript machines and a loopback
//! HTTP server that counts requests: results as events, the settle window, owed errors, at
//! most once across a failed commit, and the fetch policy.

mod effects_support;
mod http_support;
mod metrics_support;
mod services_support;

use std::time::{Duration, Instant};

use effects_support::{
    context, create_with, deploy, effects, history, send, server_with, transitions,
};
use http_support::{within, TestServer};
use serde_json::{json, Value};
use services_support::{Backend, SERVICES_V4, SERVICES_V5};
use statewire::config::Config;
use statewire::server::Extensions;

fn loopback(c: &mut Config) {
    c.effects.fetch.allow = vec!["127.0.0.1".to_owned()];
}

async fn set_up(adjust: impl FnOnce(&mut Config)) -> (TestServer, Backend) {
    let backend = Backend::start().await;
    let s = server_with(
        |c| {
            loopback(c);
            adjust(c);
        },
        Extensions::default(),
    )
    .await;
    deploy(&s, "svc", SERVICES_V4).await;
    (s, backend)
}

async fn make(s: &TestServer, b: &Backend, instance: &str, extra: Value) -> Value {
    let mut context = json!({"base": b.base});
    for (k, v) in extra.as_object().unwrap() {
        context[k] = v.clone();
    }
    create_with(s, "svc", instance, context).await
}

/// Sends an event that must be accepted; answers the whole reply and how long it took.
async fn event(s: &TestServer, instance: &str, ev: Value) -> (Value, Duration) {
    let started = Instant::now();
    let r = send(s, "svc", instance, ev).await;
    assert_eq!(r.status, 200, "event: {:?}", r.body);
    (r.json(), started.elapsed())
}

#[tokio::test]
async fn a_loader_answers_once_its_two_fetches_are_done() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "a", json!({})).await;
        let (reply, took) = event(&s, "a", json!({"type": "LOAD"})).await;
        println!("LOAD answered in {took:?} (2 commits, 2 fetches)");
        assert_eq!(reply["state"], "ok", "{reply}");
        assert_eq!(
            context(&s, "svc", "a").await["user"],
            json!({"id": 1, "name": "Ada", "plan": "pro"})
        );
        assert_eq!(
            history(&s, "svc", "a").await,
            ["LOAD", "done.invoke.fetchUser"]
        );
        assert_eq!(b.count("/user/1"), 1);
        assert_eq!(b.count("/user/1/extra"), 1);
        let stored = effects(s.store().as_ref(), "svc", "a").await;
        assert!(stored.timers.is_empty(), "{:?}", stored.timers);
        assert!(stored.services.is_empty(), "{:?}", stored.services);
        assert_eq!(s.running().registry().unsettled(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_failed_fetch_becomes_the_error_event() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "f", json!({"path": "/fail"})).await;
        let (reply, _) = event(&s, "f", json!({"type": "LOAD"})).await;
        assert_eq!(reply["state"], "failed", "{reply}");
        let h = transitions(s.store().as_ref(), "svc", "f").await;
        let error = h
            .iter()
            .find(|t| t.event["type"] == "error.platform.fetchUser")
            .expect("an error.platform event in the history");
        assert_eq!(
            error.event["data"]["message"], "status 500",
            "{}",
            error.event
        );
        assert_eq!(b.count("/fail"), 1);
        assert!(effects(s.store().as_ref(), "svc", "f")
            .await
            .services
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_settle_window_answers_a_hanging_service_and_owes_its_error() {
    within(60, async {
        let (s, b) = set_up(|c| c.effects.settle_window_ms = 200).await;
        make(&s, &b, "h", json!({})).await;
        let (reply, took) = event(&s, "h", json!({"type": "HANG"})).await;
        println!("window closed after {took:?}");
        assert_eq!(reply["state"], "hanging", "{reply}");
        assert!(
            took >= Duration::from_millis(200),
            "answered early: {took:?}"
        );
        assert!(
            took <= Duration::from_millis(350),
            "answered late: {took:?}"
        );
        let marker = &effects(s.store().as_ref(), "svc", "h").await.services;
        assert_eq!(marker.len(), 1);
        assert_eq!(marker[0].state, statewire::store::ServiceState::Interrupted);

        let (reply, _) = event(&s, "h", json!({"type": "RETRY"})).await;
        assert_eq!(reply["state"], "ok", "{reply}");
        assert_eq!(
            history(&s, "svc", "h").await,
            [
                "HANG",
                "error.platform.hang",
                "RETRY",
                "done.invoke.fetchUser"
            ]
        );
        let h = transitions(s.store().as_ref(), "svc", "h").await;
        assert_eq!(h[1].event["data"]["message"], "service interrupted");
        assert_eq!(b.count("/hang"), 1);
        assert!(effects(s.store().as_ref(), "svc", "h")
            .await
            .services
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_entry_action_runs_once_after_a_failed_commit() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "m", json!({})).await;
        s.running().registry().force_conflicts(1);
        let (reply, _) = event(&s, "m", json!({"type": "MARK"})).await;
        assert_eq!(reply["state"], "marking", "{reply}");
        // The action's fetch is sent after the commit; wait for it to arrive.
        let deadline = Instant::now() + Duration::from_secs(2);
        while b.count("/mark") == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(b.count("/mark"), 1);
        let committed = transitions(s.store().as_ref(), "svc", "m").await[0].created_at_ms;
        assert!(
            b.times("/mark")[0] >= committed,
            "requested before its commit"
        );
    })
    .await;
}

#[tokio::test]
async fn a_spawned_fetch_promise_reports_back() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "p", json!({})).await;
        let (reply, _) = event(&s, "p", json!({"type": "GO"})).await;
        assert_eq!(reply["state"], "got", "{reply}");
        assert_eq!(context(&s, "svc", "p").await["user"]["name"], "Ada");
        assert_eq!(b.count("/user/1"), 1);
        let stored = effects(s.store().as_ref(), "svc", "p").await;
        assert!(stored.services.is_empty(), "{:?}", stored.services);
    })
    .await;
}

#[tokio::test]
async fn a_transient_invoke_never_starts() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "t", json!({})).await;
        let (reply, _) = event(&s, "t", json!({"type": "T"})).await;
        assert_eq!(reply["state"], "u", "{reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(b.count("/never"), 0);
        assert!(effects(s.store().as_ref(), "svc", "t")
            .await
            .services
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_callback_service_sends_back_to_its_instance() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "c", json!({})).await;
        let (reply, _) = event(&s, "c", json!({"type": "CALL"})).await;
        assert_eq!(reply["state"], "pinged", "{reply}");
        assert_eq!(history(&s, "svc", "c").await, ["CALL", "PINGED"]);
        assert_eq!(s.running().registry().unsettled(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_named_action_runs_once_per_commit() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        make(&s, &b, "n", json!({})).await;
        event(&s, "n", json!({"type": "COUNT"})).await;
        event(&s, "n", json!({"type": "BACK"})).await;
        event(&s, "n", json!({"type": "COUNT"})).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(b.count("/count"), 2);
    })
    .await;
}

#[tokio::test]
async fn a_fetch_refused_by_the_default_policy_is_the_error_event() {
    within(60, async {
        let backend = Backend::start().await;
        let s = server_with(|_| {}, Extensions::default()).await;
        deploy(&s, "svc", SERVICES_V4).await;
        make(&s, &backend, "r", json!({})).await;
        let (reply, _) = event(&s, "r", json!({"type": "LOAD"})).await;
        assert_eq!(reply["state"], "failed", "{reply}");
        let h = transitions(s.store().as_ref(), "svc", "r").await;
        let message = h[1].event["data"]["message"].as_str().unwrap_or("");
        println!("refused: {message}");
        assert_eq!(h[1].event["type"], "error.platform.fetchUser");
        assert!(
            message.contains("127.0.0.1") || message.contains("allow"),
            "{message}"
        );
        assert_eq!(backend.counts().len(), 0);
    })
    .await;
}

#[tokio::test]
async fn xstate5_promise_actors_finish_with_their_output() {
    within(60, async {
        let (s, b) = set_up(|_| {}).await;
        deploy(&s, "svc5", SERVICES_V5).await;
        create_with(&s, "svc5", "a", json!({"base": b.base})).await;
        let r = send(&s, "svc5", "a", json!({"type": "LOAD"})).await;
        assert_eq!(r.json()["state"], "ok", "{:?}", r.body);
        assert_eq!(context(&s, "svc5", "a").await["user"]["name"], "Ada");
        assert_eq!(
            history(&s, "svc5", "a").await,
            ["LOAD", "xstate.done.actor.getUser"]
        );
        create_with(&s, "svc5", "b", json!({"base": b.base})).await;
        let r = send(&s, "svc5", "b", json!({"type": "GO"})).await;
        assert_eq!(r.json()["state"], "got", "{:?}", r.body);
        let stored = effects(s.store().as_ref(), "svc5", "b").await;
        assert!(stored.services.is_empty(), "{:?}", stored.services);
        assert_eq!(b.count("/user/1"), 2);
    })
    .await;
}

#[tokio::test]
async fn services_and_settle_windows_are_counted() {
    use metrics_support::sum;
    use statewire::metrics::services as sm;
    within(60, async {
        let exporter = statewire::metrics::install().expect("the recorder installs");
        let outcome = |text: &str, o: &str| sum(text, sm::SERVICES_TOTAL, &[("outcome", o)]);
        let before = exporter.render();
        let (s, b) = set_up(|c| c.effects.settle_window_ms = 200).await;
        make(&s, &b, "a", json!({})).await;
        event(&s, "a", json!({"type": "LOAD"})).await;
        make(&s, &b, "h", json!({})).await;
        event(&s, "h", json!({"type": "HANG"})).await;
        event(&s, "h", json!({"type": "RETRY"})).await;
        let after = exporter.render();
        assert!(outcome(&after, "started") >= outcome(&before, "started") + 3.0);
        assert!(outcome(&after, "done") >= outcome(&before, "done") + 2.0);
        assert!(outcome(&after, "interrupted") >= outcome(&before, "interrupted") + 1.0);
        let closed = |t: &str| sum(t, sm::SETTLE_WINDOWS_CLOSED_TOTAL, &[]);
        assert!(closed(&after) >= closed(&before) + 1.0);
        let settles = |t: &str| sum(t, &format!("{}_count", sm::SETTLE_SECONDS), &[]);
        assert!(settles(&after) >= settles(&before) + 3.0);
    })
    .await;
}

#[tokio::test]
async fn an_event_from_outside_extends_the_settle_window() {
    within(60, async {
        let (s, b) = set_up(|c| c.effects.settle_window_ms = 300).await;
        make(&s, &b, "x", json!({})).await;
        let client = s.client;
        let token = s.admin_token.clone();
        let started = Instant::now();
        let hang = tokio::spawn(async move {
            let r = client
                .authed(&token)
                .post(
                    "/machines/svc/i/x/events",
                    &json!({"event": {"type": "HANG"}}),
                )
                .await;
            (r.status, started.elapsed())
        });
        while b.count("/hang") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let poked_at = started.elapsed();
        let (reply, poke_took) = event(&s, "x", json!({"type": "POKE"})).await;
        assert_eq!(reply["state"], "hanging", "{reply}");
        let (status, hang_took) = hang.await.unwrap();
        assert_eq!(status, 200);
        println!(
            "poked at {poked_at:?}; POKE answered after {poke_took:?}, HANG after {hang_took:?}"
        );
        let window = Duration::from_millis(300);
        assert!(
            poke_took >= window - Duration::from_millis(5),
            "{poke_took:?}"
        );
        assert!(
            hang_took >= poked_at + window,
            "HANG answered before the moved end"
        );
        assert!(hang_took <= poked_at + window + Duration::from_millis(150));
        assert_eq!(history(&s, "svc", "x").await, ["HANG", "POKE"]);
    })
    .await;
}

#[tokio::test]
async fn an_xstate5_actor_cut_off_by_the_window_gets_its_error_event() {
    within(60, async {
        let (s, b) = set_up(|c| c.effects.settle_window_ms = 200).await;
        deploy(&s, "svc5", SERVICES_V5).await;
        create_with(&s, "svc5", "h", json!({"base": b.base})).await;
        let r = send(&s, "svc5", "h", json!({"type": "HANG"})).await;
        assert_eq!(r.json()["state"], "hanging", "{:?}", r.body);
        let r = send(&s, "svc5", "h", json!({"type": "LOAD"})).await;
        assert_eq!(r.json()["state"], "ok", "{:?}", r.body);
        assert_eq!(
            history(&s, "svc5", "h").await,
            [
                "HANG",
                "xstate.error.actor.hang",
                "LOAD",
                "xstate.done.actor.getUser"
            ]
        );
        let h = transitions(s.store().as_ref(), "svc5", "h").await;
        assert_eq!(h[1].event["actorId"], "hang");
        assert_eq!(h[1].event["error"]["message"], "service interrupted");
        assert_eq!(b.count("/hang"), 1);
    })
    .await;
}
