//! New guests are copies of a loaded template: what `load` left in memory and globals is there
//! in every guest, although only the template ever ran `load`.

mod runtime_support;

use runtime_support::{config, init_input, within};
use serde_json::json;
use statewire::runtime::{MachineCode, Runtime, RuntimeConfig};

const LOAD_AT: usize = 2000;
const CONFIGURE_AT: usize = 2500;
const STEP_AT: usize = 3000;
/// On the second page, so it is only in the image if pages past the data segments are copied.
const MARKER_AT: usize = 70_000;

const LOADED: &str = r#"{"ok":{"abi":1,"xstateMajor":null,"exports":[]}}"#;
const UNSUPPORTED: &str = r#"{"error":{"kind":"unsupported-op","message":"no configure"}}"#;
const STEP: &str = r#"{"ok":{"snapshot":{},"state":"g0","context":{"marker":"_"}}}"#;

fn packed(at: usize, text: &str) -> String {
    format!("(i64.const {})", ((at as u64) << 32) | text.len() as u64)
}

/// `load` counts itself in a mutable global and writes `L` at `MARKER_AT`; `init` answers
/// with the global's value in `state` and the marker byte in `context.marker`.
fn counting_module() -> MachineCode {
    let data = |at: usize, text: &str| {
        format!("(data (i32.const {at}) \"{}\")", text.replace('"', "\\\""))
    };
    let digit_at = STEP_AT + STEP.find("g0").unwrap() + 1;
    let mark_at = STEP_AT + STEP.find('_').unwrap();
    let wat = format!(
        r#"(module
            (memory (export "memory") 2)
            (global $loads (mut i32) (i32.const 0))
            {load_data} {configure_data} {step_data}
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 1024))
            (func (export "statewire_call") (param $op i32) (param $len i32) (result i64)
              (if (i32.eq (local.get $op) (i32.const 1))
                (then
                  (global.set $loads (i32.add (global.get $loads) (i32.const 1)))
                  (i32.store8 (i32.const {MARKER_AT}) (i32.const 76))
                  (return {load_ret})))
              (if (i32.eq (local.get $op) (i32.const 2))
                (then
                  (i32.store8 (i32.const {digit_at}) (i32.add (i32.const 48) (global.get $loads)))
                  (i32.store8 (i32.const {mark_at}) (i32.load8_u (i32.const {MARKER_AT})))
                  (return {step_ret})))
              {configure_ret}))"#,
        load_data = data(LOAD_AT, LOADED),
        configure_data = data(CONFIGURE_AT, UNSUPPORTED),
        step_data = data(STEP_AT, STEP),
        load_ret = packed(LOAD_AT, LOADED),
        step_ret = packed(STEP_AT, STEP),
        configure_ret = packed(CONFIGURE_AT, UNSUPPORTED),
    );
    let wasm = wasmer::wat2wasm(wat.as_bytes()).unwrap().into_owned();
    MachineCode::new(wasm, 1 << 20).unwrap()
}

#[tokio::test]
async fn every_new_guest_carries_the_memory_and_globals_load_left() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            idle_guests_per_machine: 0,
            workers: 1,
            ..config(dir.path())
        })
        .unwrap();
        let code = counting_module();
        for _ in 0..3 {
            let step = rt.init(&code, &init_input("a")).await.unwrap();
            assert_eq!(step.state, json!("g1"), "load ran once, in the template");
            assert_eq!(step.context, json!({"marker": "L"}));
        }
        let stats = rt.stats();
        assert_eq!(stats.templates_built, 1);
        assert_eq!(
            stats.guests_created, 3,
            "no guest is kept with no idle slots"
        );
        assert_eq!(stats.guests_live, 0);
    })
    .await;
}

/// `load` succeeds; `init` always reports `internal`.
fn failing_module() -> MachineCode {
    let internal = r#"{"error":{"kind":"internal","message":"glue failed"}}"#;
    let data = |at: usize, text: &str| {
        format!("(data (i32.const {at}) \"{}\")", text.replace('"', "\\\""))
    };
    let wat = format!(
        r#"(module
            (memory (export "memory") 1)
            {} {} {}
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 1024))
            (func (export "statewire_call") (param $op i32) (param $len i32) (result i64)
              (if (i32.eq (local.get $op) (i32.const 1)) (then (return {})))
              (if (i32.eq (local.get $op) (i32.const 2)) (then (return {})))
              {}))"#,
        data(LOAD_AT, LOADED),
        data(CONFIGURE_AT, UNSUPPORTED),
        data(STEP_AT, internal),
        packed(LOAD_AT, LOADED),
        packed(STEP_AT, internal),
        packed(CONFIGURE_AT, UNSUPPORTED),
    );
    let wasm = wasmer::wat2wasm(wat.as_bytes()).unwrap().into_owned();
    MachineCode::new(wasm, 1 << 20).unwrap()
}

#[tokio::test]
async fn a_guest_that_reports_an_internal_failure_is_replaced() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            workers: 1,
            ..config(dir.path())
        })
        .unwrap();
        let code = failing_module();
        for _ in 0..2 {
            let failed = rt.init(&code, &init_input("a")).await;
            assert!(
                matches!(failed, Err(statewire::runtime::RuntimeError::Internal(ref m)) if m.contains("glue failed")),
                "{failed:?}"
            );
        }
        assert_eq!(rt.stats().guests_created, 2, "each call got a fresh guest");
    })
    .await;
}
