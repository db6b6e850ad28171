//! Each limit gives its precise error, and the next normal call on the same machine succeeds.

mod runtime_support;

use std::time::{Duration, Instant};

use runtime_support::{config, init_input, toggle_code, within};
use serde_json::json;
use statewire::runtime::{MachineCode, Runtime, RuntimeConfig, RuntimeError, Step};

fn limited(dir: &std::path::Path, tweak: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = config(dir);
    tweak(&mut config);
    Runtime::new(config).unwrap()
}

/// Toggles once from `from` and checks the machine still works.
async fn still_toggles(rt: &Runtime, code: &MachineCode, from: &Step) {
    let next = rt
        .transition(code, &from.snapshot, &json!({"type": "toggle"}))
        .await
        .expect("a normal call after the failure succeeds");
    assert_eq!(next.state, json!("on"));
}

#[tokio::test]
async fn an_endless_loop_stops_at_the_deadline() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let deadline = Duration::from_millis(200);
        let rt = limited(dir.path(), |c| c.call_deadline = deadline);
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        let started = Instant::now();
        let spun = rt
            .transition(&code, &first.snapshot, &json!({"type": "spin"}))
            .await;
        let elapsed = started.elapsed();
        assert!(
            matches!(spun, Err(RuntimeError::Deadline(d)) if d == deadline),
            "{spun:?}"
        );
        assert!(elapsed >= deadline, "returned after {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(3),
            "returned after {elapsed:?}"
        );

        still_toggles(&rt, &code, &first).await;
        let stats = rt.stats();
        assert_eq!(stats.deadline_exceeded, 1);
        assert_eq!(
            stats.templates_built, 1,
            "the template is never the guest that trapped"
        );
        assert!(
            stats.guests_created >= 2,
            "a fresh guest replaced the interrupted one"
        );
    })
    .await;
}

#[tokio::test]
async fn a_memory_bomb_that_traps_at_the_cap_is_out_of_memory() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.memory_limit_bytes = 32 << 20);
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        let hog = rt
            .transition(&code, &first.snapshot, &json!({"type": "hog"}))
            .await;
        assert!(matches!(hog, Err(RuntimeError::OutOfMemory)), "{hog:?}");
        still_toggles(&rt, &code, &first).await;
        assert_eq!(rt.stats().out_of_memory, 1);
        assert_eq!(rt.stats().traps, 0);
    })
    .await;
}

#[tokio::test]
async fn a_machine_that_reports_out_of_memory_is_out_of_memory() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.memory_limit_bytes = 32 << 20);
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        let hog = rt
            .transition(&code, &first.snapshot, &json!({"type": "hog-gently"}))
            .await;
        assert!(matches!(hog, Err(RuntimeError::OutOfMemory)), "{hog:?}");
        still_toggles(&rt, &code, &first).await;
        assert_eq!(rt.stats().out_of_memory, 1);
    })
    .await;
}

#[tokio::test]
async fn traps_and_exits_discard_the_guest_only() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.workers = 1);
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        let crash = rt
            .transition(&code, &first.snapshot, &json!({"type": "crash"}))
            .await;
        assert!(
            matches!(crash, Err(RuntimeError::Trap(ref m)) if m.contains("unreachable")),
            "{crash:?}"
        );
        still_toggles(&rt, &code, &first).await;

        let exit = rt
            .transition(&code, &first.snapshot, &json!({"type": "exit"}))
            .await;
        assert!(
            matches!(exit, Err(RuntimeError::Trap(ref m)) if m.contains("proc_exit(3)")),
            "{exit:?}"
        );
        still_toggles(&rt, &code, &first).await;

        let stats = rt.stats();
        assert_eq!(stats.traps, 2);
        assert_eq!(stats.templates_built, 1);
        assert_eq!(
            stats.guests_created, 3,
            "one guest at first, one after each trap"
        );
        assert_eq!(
            stats.guests_live, 1,
            "trapped guests are gone; one stays warm"
        );
    })
    .await;
}

#[tokio::test]
async fn oversized_contexts_are_refused_before_and_after_the_call() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.max_context_bytes = 1_000);

        let mut input = init_input("a");
        input.context = json!({"blob": "x".repeat(2_000)});
        let refused = rt.init(&code, &input).await;
        assert!(
            matches!(refused, Err(RuntimeError::ContextTooLarge { limit: 1_000, size }) if size > 2_000),
            "{refused:?}"
        );
        assert_eq!(rt.stats().calls, 0, "refused before reaching the guest");

        let first = rt.init(&code, &init_input("a")).await.unwrap();
        let filled = rt
            .transition(&code, &first.snapshot, &json!({"type": "fill", "bytes": 5_000}))
            .await;
        assert!(matches!(filled, Err(RuntimeError::ContextTooLarge { limit: 1_000, .. })), "{filled:?}");
        still_toggles(&rt, &code, &first).await;
    })
    .await;
}

#[tokio::test]
async fn oversized_bundles_are_refused() {
    let refused = MachineCode::new(vec![0u8; 101], 100);
    assert!(matches!(
        refused,
        Err(RuntimeError::BundleTooLarge {
            size: 101,
            limit: 100
        })
    ));
}

fn wat(text: &str) -> MachineCode {
    MachineCode::new(
        wasmer::wat2wasm(text.as_bytes()).unwrap().into_owned(),
        1 << 20,
    )
    .unwrap()
}

/// A module with the ABI's shape whose `statewire_call` body is `call_body`.
fn abi_module(extra: &str, call_body: &str) -> MachineCode {
    wat(&format!(
        r#"(module
            {extra}
            (memory (export "memory") 1)
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 1024))
            (func (export "statewire_call") (param i32 i32) (result i64) {call_body}))"#
    ))
}

#[tokio::test]
async fn invalid_modules_are_invalid_bundles_and_the_runtime_carries_on() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.memory_limit_bytes = 4 << 20);
        let invalid = |r: Result<_, RuntimeError>, needle: &str| match r {
            Err(RuntimeError::InvalidBundle(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected an invalid bundle about {needle}, got {other:?}"),
        };

        let garbage = MachineCode::new(b"\0asm\x01\0\0\0garbage".to_vec(), 1 << 20).unwrap();
        invalid(rt.check(&garbage).await, "not a valid WebAssembly module");

        let no_call = wat(r#"(module (memory (export "memory") 1)
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 0)))"#);
        invalid(rt.check(&no_call).await, "statewire_call");

        let foreign = abi_module(r#"(import "env" "now" (func))"#, "(i64.const 0)");
        invalid(rt.check(&foreign).await, "env.now");

        let wrong_wasi = abi_module(
            r#"(import "wasi_snapshot_preview1" "fd_write" (func))"#,
            "(i64.const 0)",
        );
        invalid(rt.check(&wrong_wasi).await, "fd_write");

        let v3 = wat(r#"(module (memory (export "memory") 1)
            (func (export "statewire_abi_version") (result i32) (i32.const 3))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 0))
            (func (export "statewire_call") (param i32 i32) (result i64) (i64.const 0)))"#);
        invalid(rt.check(&v3).await, "ABI version 3");

        let huge = wat(r#"(module (memory (export "memory") 100)
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 0))
            (func (export "statewire_call") (param i32 i32) (result i64) (i64.const 0)))"#);
        invalid(rt.check(&huge).await, "instantiate");

        let first = rt.init(&code, &init_input("a")).await.unwrap();
        still_toggles(&rt, &code, &first).await;
    })
    .await;
}

#[tokio::test]
async fn modules_that_break_the_abi_or_trap_while_loading_are_reported() {
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let rt = limited(dir.path(), |c| c.memory_limit_bytes = 4 << 20);

        let traps = abi_module("", "(unreachable)");
        let err = rt.check(&traps).await;
        assert!(
            matches!(err, Err(RuntimeError::Trap(ref m)) if m.contains("unreachable")),
            "{err:?}"
        );

        // Output pointer far outside the one-page memory.
        let wild = abi_module("", "(i64.const 0x7fff000000000010)");
        let err = rt.check(&wild).await;
        assert!(
            matches!(err, Err(RuntimeError::Trap(ref m)) if m.contains("ABI")),
            "{err:?}"
        );

        // Unbounded recursion ends on the stack guard, not in the host.
        let deep = wat(r#"(module (memory (export "memory") 1)
            (func (export "statewire_abi_version") (result i32) (i32.const 1))
            (func (export "statewire_input") (param i32) (result i32) (i32.const 0))
            (func $call (export "statewire_call") (param i32 i32) (result i64)
              (call $call (local.get 0) (local.get 1))))"#);
        let err = rt.check(&deep).await;
        assert!(
            matches!(err, Err(RuntimeError::Trap(ref m)) if m.contains("stack")),
            "{err:?}"
        );

        // Output inside memory but not JSON (zeros).
        let zeros = abi_module("", "(i64.const 0x0000080000000004)");
        let err = rt.check(&zeros).await;
        assert!(
            matches!(err, Err(RuntimeError::Trap(ref m)) if m.contains("not ABI JSON")),
            "{err:?}"
        );
    })
    .await;
}
