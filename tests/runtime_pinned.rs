//! Machine ABI version 2 on the host: steps that leave work for their guest pin it, and the
//! effect operations run on the pinned guest. The test plays the host itself: it reads the
//! operations a service asks for and feeds their results back; nothing leaves the process.

mod runtime_support;

use std::time::Duration;

use runtime_support::{config, init_input, js_code, within};
use serde_json::{json, Value};
use statewire::runtime::{
    HostOp, MachineCode, Outbox, Pinned, Runtime, RuntimeConfig, RuntimeError, Step,
};

fn runtime_with(cache_dir: &std::path::Path, tweak: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = config(cache_dir);
    tweak(&mut config);
    Runtime::new(config).unwrap()
}

/// The initial step of `code`, which leaves nothing to run.
async fn initial(rt: &Runtime, code: &MachineCode) -> Step {
    let (step, pinned) = rt.init_pinned(code, &init_input("ada")).await.unwrap();
    assert_eq!(step.token, None, "entering idle starts nothing");
    assert!(pinned.is_none(), "a step without a token pins nothing");
    step
}

/// A runtime on a fresh cache directory, tuned by `tweak`, and the initial step of the test
/// machine `name` on it; the directory lives as long as the first element is kept.
async fn started(
    name: &'static str,
    tweak: impl FnOnce(&mut RuntimeConfig),
) -> (tempfile::TempDir, Runtime, MachineCode, Step) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(dir.path(), tweak);
    let code = js_code(name).await;
    let idle = initial(&rt, &code).await;
    (dir, rt, code, idle)
}

/// Sends `event` from `from` on a pooled guest and expects the step to pin it.
async fn pinned_step(
    rt: &Runtime,
    code: &MachineCode,
    from: &Step,
    event: Value,
) -> (Step, Pinned, u64) {
    let (step, pinned) = rt
        .transition_pinned(code, &from.snapshot, &event)
        .await
        .unwrap();
    let token = step.token.expect("the step leaves work for its guest");
    let pinned = pinned.expect("a step with a token comes with its guest");
    assert!(!pinned.is_lost());
    (step, pinned, token)
}

/// The one fetch an outbox asks for: its id and request.
fn only_fetch(outbox: &Outbox) -> (u64, Value) {
    match outbox.ops.as_slice() {
        [HostOp::Fetch { op_id, request }] => (*op_id, request.clone()),
        other => panic!("expected one fetch, got {other:?}"),
    }
}

fn json_response(body: &Value) -> Value {
    json!({"ok": true, "status": 200, "statusText": "OK",
           "headers": {"content-type": "application/json"}, "body": body.to_string()})
}

#[tokio::test]
async fn a_fetching_service_runs_on_its_pinned_guest_until_done() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |_| {}).await;

        let (loading, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "LOAD", "id": 7})).await;
        assert_eq!(loading.state, json!("loading"));
        assert!(
            loading
                .effects
                .iter()
                .any(|e| e["type"] == "start" && e["id"] == "fetchUser"),
            "{:?}",
            loading.effects
        );
        assert_eq!(rt.stats().guests_pinned, 1);

        let started = pinned.run_effects(token).await.unwrap();
        let (op_id, request) = only_fetch(&started);
        assert_eq!(request["url"], "https://api.example.test/users/7");
        assert_eq!(request["method"], "GET");
        assert_eq!(request["headers"]["accept"], "application/json");
        assert_eq!(started.running, vec!["fetchUser".to_owned()]);
        assert!(started.events.is_empty());

        let user = json!({"id": 7, "name": "Ada"});
        let done = pinned
            .complete_op(op_id, json_response(&user))
            .await
            .unwrap();
        assert_eq!(
            done.events,
            vec![json!({"type": "done.invoke.fetchUser", "data": user})]
        );
        assert!(done.running.is_empty(), "{:?}", done.running);
        assert!(done.ops.is_empty());

        let loaded = pinned
            .transition(&loading.snapshot, &done.events[0])
            .await
            .unwrap();
        assert_eq!(loaded.state, json!("loaded"));
        assert_eq!(loaded.context["user"], user);
        assert!(pinned.running().await.unwrap().running.is_empty());

        drop(pinned);
        assert_eq!(rt.stats().guests_pinned, 0, "dropping the handle unpins");
    })
    .await;
}

#[tokio::test]
async fn a_failed_fetch_ends_the_service_with_error_platform() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |_| {}).await;
        let (loading, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "LOAD", "id": 8})).await;

        let (op_id, _) = only_fetch(&pinned.run_effects(token).await.unwrap());
        let failed = pinned
            .complete_op(op_id, json!({"ok": false, "error": "connection refused"}))
            .await
            .unwrap();
        assert_eq!(failed.events.len(), 1, "{:?}", failed.events);
        let event = &failed.events[0];
        assert_eq!(event["type"], "error.platform.fetchUser");
        assert_eq!(event["data"]["name"], "TypeError");
        let message = event["data"]["message"].as_str().unwrap();
        assert!(message.contains("connection refused"), "{message}");
        assert!(failed.running.is_empty());

        let after = pinned.transition(&loading.snapshot, event).await.unwrap();
        assert_eq!(after.state, json!("failed"));
        assert_eq!(after.context["error"]["name"], "TypeError");
    })
    .await;
}

#[tokio::test]
async fn a_discarded_token_never_releases_what_its_step_held_back() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |_| {}).await;

        // The fetch inside `assign` is made during the pure step and held back under the
        // token; an uncommitted step's token is discarded and its fetch never shows.
        let (first, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "PREFETCH"})).await;
        assert_eq!(first.context["prefetches"], 1);
        let discarded = pinned.discard(token).await.unwrap();
        assert!(discarded.ops.is_empty(), "{discarded:?}");
        let err = pinned.run_effects(token).await.unwrap_err();
        assert!(
            matches!(err.error, RuntimeError::BadInput(_)),
            "a discarded token is gone: {err}"
        );
        assert!(!pinned.is_lost(), "bad input keeps the guest");
        assert!(pinned.running().await.unwrap().ops.is_empty());

        // The same step, committed this time, releases its fetch.
        let second = pinned
            .transition(&idle.snapshot, &json!({"type": "PREFETCH"}))
            .await
            .unwrap();
        let kept = second.token.expect("the fetch is held back under a token");
        let outbox = pinned.run_effects(kept).await.unwrap();
        let (_, request) = only_fetch(&outbox);
        assert_eq!(request["url"], "https://api.example.test/prefetch");
    })
    .await;
}

#[tokio::test]
async fn stopping_a_service_aborts_its_fetch_and_drops_its_result() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |_| {}).await;
        let (_, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "LOAD", "id": 9})).await;
        let (op_id, _) = only_fetch(&pinned.run_effects(token).await.unwrap());

        let stopped = pinned.stop_child("fetchUser").await.unwrap();
        assert_eq!(stopped.abort, vec![op_id]);
        assert!(stopped.running.is_empty(), "{:?}", stopped.running);

        let late = pinned
            .complete_op(op_id, json_response(&json!({"id": 9})))
            .await
            .unwrap();
        assert!(
            late.events.is_empty(),
            "a stopped service sends nothing: {late:?}"
        );
        assert!(late.ops.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_timer_in_a_service_is_a_sleep_operation() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |_| {}).await;
        let (_, mut pinned, token) = pinned_step(&rt, &code, &idle, json!({"type": "NAP"})).await;

        let started = pinned.run_effects(token).await.unwrap();
        let op_id = match started.ops.as_slice() {
            [HostOp::Sleep { op_id, ms }] => {
                assert_eq!(*ms, 50);
                *op_id
            }
            other => panic!("expected one sleep, got {other:?}"),
        };
        assert_eq!(started.running, vec!["nap".to_owned()]);
        let woke = pinned.complete_op(op_id, json!({})).await.unwrap();
        assert_eq!(
            woke.events,
            vec![json!({"type": "done.invoke.nap", "data": "rested"})]
        );
    })
    .await;
}

#[tokio::test]
async fn an_xstate_5_promise_actor_runs_end_to_end() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime_with(dir.path(), |_| {});
        let code = js_code("effects-v5").await;
        assert_eq!(rt.check(&code).await.unwrap().xstate_major, Some(5));
        let idle = initial(&rt, &code).await;
        let (loading, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "LOAD", "id": 5})).await;
        assert_eq!(loading.state, json!("loading"));

        let started = pinned.run_effects(token).await.unwrap();
        let (op_id, request) = only_fetch(&started);
        assert_eq!(request["url"], "https://api.example.test/users/5");
        assert_eq!(started.running, vec!["fetchUser".to_owned()]);

        let user = json!({"id": 5, "name": "Grace"});
        let done = pinned
            .complete_op(op_id, json_response(&user))
            .await
            .unwrap();
        assert_eq!(done.events.len(), 1, "{:?}", done.events);
        assert_eq!(done.events[0]["type"], "xstate.done.actor.fetchUser");
        assert_eq!(done.events[0]["output"], user);
        assert!(done.running.is_empty());

        let loaded = pinned
            .transition(&loading.snapshot, &done.events[0])
            .await
            .unwrap();
        assert_eq!(loaded.state, json!("loaded"));
        assert_eq!(loaded.context["user"], user);
    })
    .await;
}

#[tokio::test]
async fn steps_without_a_token_do_not_pin() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime_with(dir.path(), |_| {});
        for name in ["toggle-v4", "toggle-v5"] {
            let code = js_code(name).await;
            let first = initial(&rt, &code).await;
            let (second, pinned) = rt
                .transition_pinned(&code, &first.snapshot, &json!({"type": "toggle"}))
                .await
                .unwrap();
            assert_eq!(second.state, json!("on"), "{name}");
            assert_eq!(second.token, None, "{name}");
            assert!(pinned.is_none(), "{name}");
        }
        let stats = rt.stats();
        assert_eq!(stats.guests_pinned, 0);
        assert!(
            stats.guests_live <= 2 * 2,
            "pooled guests went back to their pools: {stats:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_runaway_service_loses_its_guest_and_the_runtime_keeps_serving() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let deadline = Duration::from_millis(300);
        let rt = runtime_with(dir.path(), |c| c.call_deadline = deadline);
        let code = js_code("effects-v4").await;
        let idle = initial(&rt, &code).await;
        let (spinning, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "SPIN"})).await;

        let started = std::time::Instant::now();
        let err = pinned.run_effects(token).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(err.error, RuntimeError::Deadline(d) if d == deadline),
            "{err}"
        );
        assert!(err.partial.is_none());
        assert!(elapsed >= deadline, "not early: {elapsed:?}");
        assert!(elapsed < deadline + Duration::from_secs(3), "{elapsed:?}");
        assert!(pinned.is_lost());
        assert!(pinned.lost_reason().unwrap().contains("deadline"));
        assert_eq!(rt.stats().guests_pinned, 0, "a lost guest frees its slot");
        assert_eq!(rt.stats().deadline_exceeded, 1);

        let again = pinned.running().await.unwrap_err();
        assert!(matches!(again.error, RuntimeError::GuestLost(_)), "{again}");
        let again = pinned
            .transition(&spinning.snapshot, &json!({"type": "LOAD"}))
            .await
            .unwrap_err();
        assert!(matches!(again, RuntimeError::GuestLost(_)), "{again}");

        let (loading, fresh) = rt
            .transition_pinned(&code, &idle.snapshot, &json!({"type": "LOAD", "id": 1}))
            .await
            .unwrap();
        assert_eq!(loading.state, json!("loading"));
        let mut fresh = fresh.unwrap();
        let outbox = fresh.run_effects(loading.token.unwrap()).await.unwrap();
        assert_eq!(
            only_fetch(&outbox).1["url"],
            "https://api.example.test/users/1"
        );
    })
    .await;
}

#[tokio::test]
async fn a_call_abandoned_by_its_caller_loses_the_guest() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |c| {
            c.call_deadline = Duration::from_millis(500)
        })
        .await;
        let (_, mut pinned, token) = pinned_step(&rt, &code, &idle, json!({"type": "SPIN"})).await;

        let abandoned =
            tokio::time::timeout(Duration::from_millis(50), pinned.run_effects(token)).await;
        assert!(
            abandoned.is_err(),
            "the spinning call cannot answer in 50 ms"
        );
        assert!(
            pinned.is_lost(),
            "what the call asked for is gone with its answer"
        );
        let err = pinned.running().await.unwrap_err();
        assert!(matches!(err.error, RuntimeError::GuestLost(_)), "{err}");
        drop(pinned);
        assert_eq!(rt.stats().guests_pinned, 0);

        // The worker comes back once the abandoned call hits its deadline.
        let (step, fresh) = rt
            .transition_pinned(&code, &idle.snapshot, &json!({"type": "LOAD", "id": 2}))
            .await
            .unwrap();
        let outbox = fresh
            .unwrap()
            .run_effects(step.token.unwrap())
            .await
            .unwrap();
        assert_eq!(
            only_fetch(&outbox).1["url"],
            "https://api.example.test/users/2"
        );
    })
    .await;
}

#[tokio::test]
async fn a_service_that_exhausts_the_heap_fails_and_its_guest_keeps_serving() {
    within(300, async {
        let (_dir, rt, code, idle) =
            started("effects-v4", |c| c.memory_limit_bytes = 32 << 20).await;
        let (hogging, mut pinned, token) =
            pinned_step(&rt, &code, &idle, json!({"type": "HOG"})).await;

        // QuickJS reports the exhausted heap as an error inside the service, which rejects.
        let failed = pinned.run_effects(token).await.unwrap();
        assert_eq!(failed.events.len(), 1, "{failed:?}");
        assert_eq!(failed.events[0]["type"], "error.platform.hog");
        assert!(failed.running.is_empty());
        assert!(!pinned.is_lost());

        let after = pinned
            .transition(&hogging.snapshot, &json!({"type": "ANYTHING"}))
            .await
            .unwrap();
        assert_eq!(after.state, json!("hogging"));
        assert!(pinned.running().await.unwrap().running.is_empty());
    })
    .await;
}

#[tokio::test]
async fn pinning_is_bounded_and_dropping_a_handle_frees_a_slot() {
    within(300, async {
        let (_dir, rt, code, idle) = started("effects-v4", |c| c.max_pinned = 2).await;
        let load = |id: u64| json!({"type": "LOAD", "id": id});

        let (_, first, _) = pinned_step(&rt, &code, &idle, load(1)).await;
        let (_, mut second, second_token) = pinned_step(&rt, &code, &idle, load(2)).await;
        assert_eq!(rt.stats().guests_pinned, 2);

        let refused = rt
            .transition_pinned(&code, &idle.snapshot, &load(3))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, RuntimeError::TooManyPinned { limit: 2 }),
            "{refused}"
        );
        assert_eq!(rt.stats().guests_pinned, 2, "a refusal takes no slot");
        // Steps that pin nothing still run at the bound.
        let (_, none) = rt
            .transition_pinned(&code, &idle.snapshot, &json!({"type": "UNKNOWN"}))
            .await
            .unwrap();
        assert!(none.is_none());

        drop(first);
        assert_eq!(rt.stats().guests_pinned, 1);
        let (_, mut third, third_token) = pinned_step(&rt, &code, &idle, load(3)).await;
        assert_eq!(rt.stats().guests_pinned, 2);

        // The handles own distinct guests: each token runs on its own.
        let a = second.run_effects(second_token).await.unwrap();
        let b = third.run_effects(third_token).await.unwrap();
        assert_eq!(only_fetch(&a).1["url"], "https://api.example.test/users/2");
        assert_eq!(only_fetch(&b).1["url"], "https://api.example.test/users/3");

        drop((second, third));
        assert_eq!(rt.stats().guests_pinned, 0, "no drift");
    })
    .await;
}
