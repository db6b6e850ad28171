//! `statewire-load events` for about two seconds against a statewire server it starts itself
//! on loopback: the report must show acknowledged events and no errors.
//!
//! The server binary is `STATEWIRE_BIN`, else the `statewire` built next to this crate's
//! binary (`cargo test --workspace` builds both). Without either the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

fn statewire_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("STATEWIRE_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_BIN_EXE_statewire-load")).with_file_name("statewire"),
    };
    path.is_file().then_some(path)
}

/// `examples/raw-wasm-toggle` compiled to `wasm32-wasip1`, once per test binary.
fn toggle_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("raw-wasm-toggle");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(root.join("examples/raw-wasm-toggle/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building examples/raw-wasm-toggle failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir.join("wasm32-wasip1/release/raw_wasm_toggle.wasm")
    })
    .clone()
}

/// Runs `events` with `extra` arguments and returns its JSON report.
fn run_events(name: &str, extra: &[&str]) -> Option<Value> {
    let Some(statewire) = statewire_bin() else {
        eprintln!("skipped: no statewire binary (set STATEWIRE_BIN or build the workspace)");
        return None;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("events-smoke-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_statewire-load"))
        .arg("events")
        .arg("--spawn")
        .arg(&statewire)
        .arg("--machine")
        .arg(toggle_wasm())
        .arg("--data-dir")
        .arg(&dir)
        .arg("--report")
        .arg(&report)
        .args(["--duration-s", "1.5", "--warmup-s", "0.5"])
        .args(extra)
        .spawn()
        .expect("statewire-load starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("statewire-load events did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "statewire-load events failed: {status}");
    let text = std::fs::read_to_string(&report).expect("the report is written");
    let _ = std::fs::remove_dir_all(&dir);
    Some(serde_json::from_str(&text).expect("the report is JSON"))
}

fn assert_clean(report: &Value) {
    assert!(report["ok"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert!(report["throughput_events_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["latency"]["count"].as_u64().unwrap() > 0);
    assert!(report["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn http_events_are_acknowledged_without_errors() {
    let Some(report) = run_events("http", &["--instances", "2"]) else {
        return;
    };
    assert_clean(&report);
    assert_eq!(report["protocol"], "http");
    assert_eq!(report["connections"], 2);
}

#[test]
fn websocket_commands_reach_every_subscriber() {
    let Some(report) = run_events(
        "ws",
        &["--protocol", "ws", "--instances", "2", "--subscribers", "2"],
    ) else {
        return;
    };
    assert_clean(&report);
    let fanout = &report["fanout"];
    assert_eq!(fanout["subscribers_per_instance"], 2);
    assert!(fanout["seen_by_all"].as_u64().unwrap() > 0, "{report:#}");
}
