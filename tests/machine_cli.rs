//! `statewire machine check|run` as a machine author uses it: the real binary, the real
//! runtime, bundles built the smply way.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use common::cli::{statewire, CliOutput};
use common::machines::{machines_src_dir, repo_root, suite};
use common::within;
use serde_json::json;

const TEST_TIMEOUT: Duration = Duration::from_secs(240);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn cache_dir() -> PathBuf {
    repo_root()
        .join("target")
        .join("machines")
        .join("module-cache")
}

fn built(file: &str) -> String {
    path_arg(suite().bundle_path(file))
}

fn hand_written(file: &str) -> String {
    path_arg(machines_src_dir().join("cli").join(file))
}

fn path_arg(path: PathBuf) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

fn machine(args: &[&str]) -> CliOutput {
    let mut full = vec!["machine"];
    full.extend_from_slice(args);
    statewire(&full, &cache_dir(), RUN_TIMEOUT)
}

fn assert_fails_mentioning(output: &CliOutput, words: &[&str]) {
    assert_eq!(output.code, Some(1), "{output:?}");
    let stderr = output.stderr.to_lowercase();
    for word in words {
        assert!(
            stderr.contains(&word.to_lowercase()),
            "stderr should mention {word:?}: {output:?}"
        );
    }
}

#[test]
fn check_reports_a_syntax_error_with_the_parser_message() {
    within(TEST_TIMEOUT, || {
        let out = machine(&["check", &hand_written("syntax-error.js")]);
        assert_fails_mentioning(&out, &["invalid machine bundle", "syntax"]);
        assert!(out.stdout.is_empty(), "{out:?}");
    });
}

#[test]
fn check_reports_a_bundle_without_a_default_export() {
    within(TEST_TIMEOUT, || {
        let out = machine(&["check", &hand_written("no-default-export.js")]);
        assert_fails_mentioning(&out, &["invalid machine bundle", "default"]);
    });
}

#[test]
fn check_reports_a_default_export_that_is_not_a_machine() {
    within(TEST_TIMEOUT, || {
        let out = machine(&["check", &hand_written("not-a-machine.js")]);
        assert_fails_mentioning(&out, &["invalid machine bundle", "machine"]);
    });
}

#[test]
fn check_names_the_missing_authorizer() {
    within(TEST_TIMEOUT, || {
        let out = machine(&["check", &hand_written("no-allow-write.js")]);
        assert_fails_mentioning(&out, &["allowWrite"]);
        assert!(!out.stderr.contains("allowRead or"), "{out:?}");
    });
}

#[test]
fn check_refuses_a_bundle_over_the_size_limit_before_loading_it() {
    within(TEST_TIMEOUT, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("huge.js");
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(b"export default 1;\n").expect("write");
        file.write_all(&vec![b' '; 10_000_000]).expect("write");
        drop(file);
        let out = machine(&["check", &path_arg(path)]);
        assert_fails_mentioning(&out, &["10000018 bytes", "limit is 10000000"]);
    });
}

#[test]
fn check_refuses_a_wasm_file_that_is_not_webassembly() {
    within(TEST_TIMEOUT, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("machine.wasm");
        std::fs::write(&path, "export default 1;").expect("write");
        let out = machine(&["check", &path_arg(path)]);
        assert_fails_mentioning(&out, &["not a WebAssembly module"]);
    });
}

#[test]
fn check_accepts_gzipped_bundles_by_name_or_by_magic() {
    within(TEST_TIMEOUT, || {
        use flate2::{write::GzEncoder, Compression};
        let source = std::fs::read(built("v5-player.js")).expect("built bundle");
        let mut zipped = GzEncoder::new(Vec::new(), Compression::default());
        zipped.write_all(&source).expect("gzip");
        let zipped = zipped.finish().expect("gzip");
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["player.js.gz", "player.js"] {
            let path = dir.path().join(name);
            std::fs::write(&path, &zipped).expect("write");
            let out = machine(&["check", &path_arg(path)]);
            assert_eq!(out.code, Some(0), "{name}: {out:?}");
            assert_eq!(
                out.json_lines(),
                vec![json!({"ok": true, "xstateMajor": 5, "exports": ["allowRead", "allowWrite"]})]
            );
        }
    });
}

#[test]
fn run_prints_the_steps_before_a_failing_event_then_exits_with_an_error() {
    within(TEST_TIMEOUT, || {
        let bundle = hand_written("throws-on-event.js");
        let args = [
            "run", &bundle, "--event", "poke", "--event", "explode", "--event", "poke",
        ];
        let out = machine(&args);
        assert_fails_mentioning(
            &out,
            &["event 2", "explode", "boom: explode is not allowed here"],
        );
        let states: Vec<_> = out
            .json_lines()
            .iter()
            .map(|l| l["publicContext"].clone())
            .collect();
        assert_eq!(states, vec![json!({"pokes": 0}), json!({"pokes": 1})]);
    });
}

#[test]
fn run_refuses_an_event_without_a_type_before_starting() {
    within(TEST_TIMEOUT, || {
        let bundle = built("quickstart/toggle.js");
        let out = machine(&["run", &bundle, "--event", r#"{"value":1}"#]);
        assert_fails_mentioning(&out, &["type"]);
        assert!(out.stdout.is_empty(), "{out:?}");
    });
}

#[test]
fn run_merges_the_creation_context_and_sends_json_events() {
    within(TEST_TIMEOUT, || {
        let bundle = built("v4-thermostat.js");
        let args = [
            "run",
            &bundle,
            "--context",
            r#"{"max":12}"#,
            "--event",
            "powerOn",
            "--event",
            r#"{"type":"set","value":13}"#,
            "--event",
            r#"{"type":"set","value":11}"#,
        ];
        let out = machine(&args);
        assert_eq!(out.code, Some(0), "{out:?}");
        let lines = out.json_lines();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["event"], json!({"type": "set", "value": 13}));
        assert_eq!(
            lines[2]["publicContext"],
            json!({"target": 20, "lastRejected": 13})
        );
        assert_eq!(
            lines[3]["publicContext"],
            json!({"target": 11, "lastRejected": 13})
        );
        assert_eq!(lines[3]["state"], json!({"power": "on", "mode": "auto"}));
        assert_eq!(lines[3]["tags"], json!(["powered"]));
    });
}

#[test]
fn run_with_authorize_stops_a_caller_the_machine_refuses() {
    within(TEST_TIMEOUT, || {
        let bundle = built("quickstart/toggle.js");
        let as_bob = [
            "run",
            &bundle,
            "--authorize",
            "--instance",
            "alice",
            "--auth-context",
            r#"{"sub":"bob"}"#,
            "--event",
            "toggle",
        ];
        let out = machine(&as_bob);
        assert_fails_mentioning(&out, &["allowWrite denied creating the instance"]);
        assert!(out.stdout.is_empty(), "{out:?}");

        let as_alice = [
            "run",
            &bundle,
            "--authorize",
            "--instance",
            "alice",
            "--auth-context",
            r#"{"sub":"alice"}"#,
            "--event",
            "toggle",
        ];
        let out = machine(&as_alice);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.json_lines().len(), 2);
    });
}

#[test]
fn run_with_effects_shows_the_timers_a_step_arms() {
    within(TEST_TIMEOUT, || {
        let bundle = built("v5-traffic.js");
        let out = machine(&["run", &bundle, "--effects", "--event", "emergency"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let lines = out.json_lines();
        let effects = lines[1]["effects"].as_array().expect("effects listed");
        let ids: Vec<_> = effects.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(
            ids,
            vec![
                json!("xstate.after.30000.traffic.green"),
                json!("self-test")
            ]
        );
    });
}

/// Builds `examples/raw-wasm-toggle` (a machine written in Rust against the machine ABI) for
/// `wasm32-wasip1`, in its own target directory under `target/`.
fn raw_wasm_toggle() -> PathBuf {
    let example = repo_root().join("examples").join("raw-wasm-toggle");
    let target = repo_root().join("target").join("raw-wasm-toggle");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
        .arg("--manifest-path")
        .arg(example.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo starts");
    assert!(
        status.success(),
        "building {} for wasm32-wasip1 failed ({status}); \
         `rustup target add wasm32-wasip1` installs the target",
        example.display()
    );
    target
        .join("wasm32-wasip1")
        .join("release")
        .join("raw_wasm_toggle.wasm")
}

#[test]
fn raw_wasm_machines_are_checked_and_run_like_bundles() {
    within(TEST_TIMEOUT, || {
        let wasm = path_arg(raw_wasm_toggle());
        let out = machine(&["check", &wasm]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.json_lines(),
            vec![json!({"ok": true, "xstateMajor": null, "exports": ["allowRead", "allowWrite"]})]
        );

        let out = machine(&["run", &wasm, "--event", "toggle", "--event", "toggle"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let steps: Vec<_> = out
            .json_lines()
            .iter()
            .map(|l| {
                (
                    l["state"].clone(),
                    l["publicContext"]["toggleCount"].clone(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                (json!("off"), json!(1)),
                (json!("on"), json!(1)),
                (json!("off"), json!(2))
            ]
        );

        let out = machine(&["run", &wasm, "--deadline-ms", "300", "--event", "spin"]);
        assert_fails_mentioning(&out, &["event 1", "spin", "300ms deadline"]);
        assert_eq!(
            out.json_lines().len(),
            1,
            "the initial state is printed: {out:?}"
        );
    });
}
