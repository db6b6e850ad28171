//! The raw-wasm toggle machine run through the public runtime API.

mod runtime_support;

use runtime_support::{config, init_input, runtime, toggle_code, within};
use serde_json::json;
use statewire::runtime::{CodeKind, Runtime, RuntimeConfig, RuntimeError};

#[tokio::test]
async fn toggle_counts_each_entry_into_off() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());

        let first = rt.init(&code, &init_input("alice")).await.unwrap();
        assert_eq!(
            (first.state.clone(), first.public_context()),
            (json!("off"), json!({"toggleCount": 1}))
        );
        assert!(!first.done);
        assert!(first.effects.is_empty());

        let toggle = json!({"type": "toggle"});
        let second = rt
            .transition(&code, &first.snapshot, &toggle)
            .await
            .unwrap();
        assert_eq!(
            (second.state.clone(), second.public_context()),
            (json!("on"), json!({"toggleCount": 1}))
        );
        assert_eq!(second.tags, vec!["lit".to_owned()]);

        let third = rt
            .transition(&code, &second.snapshot, &toggle)
            .await
            .unwrap();
        assert_eq!(
            (third.state.clone(), third.public_context()),
            (json!("off"), json!({"toggleCount": 2}))
        );
    })
    .await;
}

#[tokio::test]
async fn init_merges_the_given_context_over_the_initial_one() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let mut input = init_input("bob");
        input.context = json!({"public": {"toggleCount": 10}, "secret": "s"});
        let step = rt.init(&code, &input).await.unwrap();
        assert_eq!(step.public_context(), json!({"toggleCount": 11}));
        assert_eq!(step.context["secret"], json!("s"));
    })
    .await;
}

#[tokio::test]
async fn check_reports_a_raw_wasm_machine_and_its_exports() {
    within(300, async {
        let code = toggle_code().await;
        assert_eq!(code.kind, CodeKind::RawWasm);
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let info = rt.check(&code).await.unwrap();
        assert_eq!(info.kind, CodeKind::RawWasm);
        assert_eq!(info.xstate_major, None);
        assert_eq!(
            info.exports,
            vec!["allowRead".to_owned(), "allowWrite".to_owned()]
        );
    })
    .await;
}

#[tokio::test]
async fn authorizers_allow_only_the_user_named_like_the_instance() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let read = |sub: &str| {
            json!({
                "machineInstanceName": "carol",
                "state": "off",
                "context": {},
                "authContext": {"sub": sub},
            })
        };
        assert!(rt.allow_read(&code, &read("carol")).await.unwrap());
        assert!(!rt.allow_read(&code, &read("mallory")).await.unwrap());

        let write = |sub: &str| {
            json!({
                "type": "event",
                "machineInstanceName": "carol",
                "state": "off",
                "context": {},
                "event": {"type": "toggle"},
                "authContext": {"sub": sub},
            })
        };
        assert!(rt.allow_write(&code, &write("carol")).await.unwrap());
        assert!(!rt.allow_write(&code, &write("mallory")).await.unwrap());
        let init = json!({
            "type": "initialization",
            "machineInstanceName": "carol",
            "context": {},
            "authContext": {},
        });
        assert!(!rt.allow_write(&code, &init).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn effects_come_back_as_the_machine_left_them() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let first = rt.init(&code, &init_input("dave")).await.unwrap();
        let step = rt
            .transition(
                &code,
                &first.snapshot,
                &json!({"type": "remind", "delay": 250}),
            )
            .await
            .unwrap();
        assert_eq!(
            step.effects,
            vec![json!({
                "type": "schedule",
                "id": "reminder",
                "delay": 250,
                "event": {"type": "toggle"},
                "to": null,
            })]
        );
    })
    .await;
}

#[tokio::test]
async fn machine_errors_are_reported_and_the_guest_keeps_serving() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            workers: 1,
            ..config(dir.path())
        })
        .unwrap();
        let first = rt.init(&code, &init_input("erin")).await.unwrap();

        let threw = rt
            .transition(&code, &first.snapshot, &json!({"type": "throw"}))
            .await;
        assert!(
            matches!(threw, Err(RuntimeError::MachineThrew(ref m)) if m == "asked to throw"),
            "{threw:?}"
        );

        let no_type = rt
            .transition(&code, &first.snapshot, &json!({"kind": "toggle"}))
            .await;
        assert!(
            matches!(no_type, Err(RuntimeError::BadInput(_))),
            "{no_type:?}"
        );

        let bad_snapshot = rt.transition(&code, "{}", &json!({"type": "toggle"})).await;
        assert!(
            matches!(bad_snapshot, Err(RuntimeError::BadInput(_))),
            "{bad_snapshot:?}"
        );

        let next = rt
            .transition(&code, &first.snapshot, &json!({"type": "toggle"}))
            .await
            .unwrap();
        assert_eq!(next.state, json!("on"));
        let stats = rt.stats();
        assert_eq!(stats.traps, 0);
        assert_eq!(stats.templates_built, 1);
        assert_eq!(stats.guests_created, 1, "clean errors keep the guest warm");
    })
    .await;
}
