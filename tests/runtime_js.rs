//! JavaScript machines, bundled the way `smply` bundles them, run in the embedded guest.

mod runtime_support;

use std::time::Duration;

use runtime_support::{config, init_input, js_code, runtime, within};
use serde_json::json;
use statewire::runtime::{CodeKind, MachineCode, Runtime, RuntimeConfig, RuntimeError, Step};

async fn toggle(rt: &Runtime, code: &MachineCode, from: &Step) -> Step {
    rt.transition(code, &from.snapshot, &json!({"type": "toggle"}))
        .await
        .expect("toggle succeeds")
}

#[tokio::test]
async fn toggles_in_xstate_4_and_5_count_each_entry_into_off() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        for (name, major) in [("toggle-v4", 4), ("toggle-v5", 5)] {
            let code = js_code(name).await;
            assert_eq!(code.kind, CodeKind::JsBundle);
            let info = rt.check(&code).await.unwrap();
            assert_eq!(info.xstate_major, Some(major), "{name}");
            assert_eq!(
                info.exports,
                vec!["allowRead".to_owned(), "allowWrite".to_owned()]
            );

            let first = rt.init(&code, &init_input("alice")).await.unwrap();
            assert_eq!(first.state, json!("off"), "{name}");
            assert_eq!(first.public_context(), json!({"toggleCount": 1}), "{name}");
            let second = toggle(&rt, &code, &first).await;
            assert_eq!(second.state, json!("on"), "{name}");
            assert_eq!(second.public_context(), json!({"toggleCount": 1}), "{name}");
            assert_eq!(second.tags, vec!["lit".to_owned()], "{name}");
            let third = toggle(&rt, &code, &second).await;
            assert_eq!(third.state, json!("off"), "{name}");
            assert_eq!(third.public_context(), json!({"toggleCount": 2}), "{name}");
        }
        assert_eq!(
            rt.stats().artifacts_compiled,
            1,
            "one guest module serves every bundle"
        );
    })
    .await;
}

#[tokio::test]
async fn authorizers_of_a_bundle_decide_reads_and_writes() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let code = js_code("toggle-v4").await;
        let read = |sub: &str| {
            json!({"machineInstanceName": "carol", "state": "off", "context": {},
                   "authContext": {"sub": sub}})
        };
        assert!(rt.allow_read(&code, &read("carol")).await.unwrap());
        assert!(!rt.allow_read(&code, &read("mallory")).await.unwrap());
        let write = json!({"type": "initialization", "machineInstanceName": "carol",
                           "context": {}, "authContext": {"sub": "carol"}});
        assert!(rt.allow_write(&code, &write).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn nested_parallel_orders_step_through_regions_timers_and_done() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        for name in ["order-v4", "order-v5"] {
            let code = js_code(name).await;
            let send = |step: Step, event: &'static str| {
                let (rt, code) = (rt.clone(), code.clone());
                async move {
                    rt.transition(&code, &step.snapshot, &json!({"type": event}))
                        .await
                        .unwrap_or_else(|e| panic!("{name} {event}: {e}"))
                }
            };
            let draft = rt.init(&code, &init_input("o1")).await.unwrap();
            assert_eq!(draft.state, json!("draft"), "{name}");

            let guarded = send(draft.clone(), "submit").await;
            assert_eq!(
                guarded.state,
                json!("draft"),
                "{name}: the guard holds an empty order"
            );

            let added = send(draft, "add").await;
            let review = send(added, "submit").await;
            assert_eq!(
                review.state,
                json!({"review": {"payment": "pending", "shipping": "packing"}}),
                "{name}"
            );
            assert_eq!(
                review.public_context(),
                json!({"stage": "review"}),
                "{name}"
            );
            let timers: Vec<_> = review
                .effects
                .iter()
                .filter(|e| e["type"] == "schedule")
                .collect();
            assert_eq!(timers.len(), 1, "{name}: {:?}", review.effects);
            assert_eq!(timers[0]["delay"], json!(30000), "{name}");

            let paid = send(review, "pay").await;
            assert_eq!(
                paid.state,
                json!({"review": {"payment": "paid", "shipping": "packing"}}),
                "{name}"
            );
            assert!(
                paid.effects.iter().any(|e| e["type"] == "cancel"),
                "{name}: {:?}",
                paid.effects
            );
            assert!(!paid.done, "{name}");

            let complete = send(paid, "ship").await;
            assert_eq!(complete.state, json!("complete"), "{name}");
            assert!(complete.done, "{name}");
            assert_eq!(
                complete.public_context(),
                json!({"stage": "complete"}),
                "{name}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_javascript_endless_loop_stops_at_the_deadline() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            call_deadline: Duration::from_millis(300),
            ..config(dir.path())
        })
        .unwrap();
        rt.warm_up().await.unwrap();
        for name in ["toggle-v4", "toggle-v5"] {
            let code = js_code(name).await;
            let first = rt.init(&code, &init_input("a")).await.unwrap();
            let spun = rt
                .transition(&code, &first.snapshot, &json!({"type": "spin"}))
                .await;
            assert!(
                matches!(spun, Err(RuntimeError::Deadline(_))),
                "{name}: {spun:?}"
            );
            assert_eq!(
                toggle(&rt, &code, &first).await.state,
                json!("on"),
                "{name}"
            );
        }
        assert_eq!(rt.stats().deadline_exceeded, 2);
    })
    .await;
}

#[tokio::test]
async fn a_javascript_memory_bomb_is_out_of_memory_and_the_next_call_works() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            memory_limit_bytes: 48 << 20,
            ..config(dir.path())
        })
        .unwrap();
        for name in ["toggle-v4", "toggle-v5"] {
            let code = js_code(name).await;
            let first = rt.init(&code, &init_input("a")).await.unwrap();
            let hog = rt
                .transition(&code, &first.snapshot, &json!({"type": "hog"}))
                .await;
            assert!(
                matches!(hog, Err(RuntimeError::OutOfMemory)),
                "{name}: {hog:?}"
            );
            assert_eq!(
                toggle(&rt, &code, &first).await.state,
                json!("on"),
                "{name}"
            );
        }
        let stats = rt.stats();
        assert_eq!(stats.out_of_memory, 2);
        assert_eq!(stats.traps, 0, "the guest reported it cleanly: {stats:?}");
    })
    .await;
}

#[tokio::test]
async fn machine_code_that_throws_is_machine_threw() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        for name in ["toggle-v4", "toggle-v5"] {
            let code = js_code(name).await;
            let first = rt.init(&code, &init_input("a")).await.unwrap();
            let threw = rt.transition(&code, &first.snapshot, &json!({"type": "throw"})).await;
            assert!(
                matches!(threw, Err(RuntimeError::MachineThrew(ref m)) if m.contains("asked to throw")),
                "{name}: {threw:?}"
            );
            assert_eq!(toggle(&rt, &code, &first).await.state, json!("on"), "{name}");
        }
    })
    .await;
}

#[tokio::test]
async fn broken_bundles_are_invalid() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let source = |text: &str| MachineCode::new(text.as_bytes().to_vec(), 1 << 20).unwrap();
        let invalid = |r: Result<_, RuntimeError>, needle: &str| match r {
            Err(RuntimeError::InvalidBundle(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected an invalid bundle about {needle}, got {other:?}"),
        };
        invalid(rt.check(&source("export default {{;")).await, "SyntaxError");
        invalid(
            rt.check(&source("import _ from 'npm:lodash'; export default _;"))
                .await,
            "lodash",
        );
        invalid(
            rt.check(&js_code("missing-authorizer").await).await,
            "allowWrite",
        );

        let code = js_code("toggle-v4").await;
        rt.init(&code, &init_input("a")).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_javascript_instances_do_not_mix() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let code = js_code("toggle-v5").await;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (rt, code) = (rt.clone(), code.clone());
                tokio::spawn(async move {
                    let mut step = rt.init(&code, &init_input(&format!("i{i}"))).await.unwrap();
                    for _ in 0..(2 * i) {
                        step = toggle(&rt, &code, &step).await;
                    }
                    (i, step)
                })
            })
            .collect();
        for task in tasks {
            let (i, step) = task.await.unwrap();
            assert_eq!(step.state, json!("off"));
            assert_eq!(step.public_context()["toggleCount"], json!(1 + i));
        }
    })
    .await;
}
