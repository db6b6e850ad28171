//! Shared setup for the runtime tests: the raw-wasm toggle machine built from source, and
//! runtimes on temporary cache directories.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use statewire::runtime::{InitInput, MachineCode, Runtime, RuntimeConfig};

/// The example machine in `examples/raw-wasm-toggle`, compiled to `wasm32-wasip1` once per
/// test binary (cargo makes later builds no-ops).
pub fn toggle_wasm() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("raw-wasm-toggle");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
            ])
            .arg(root.join("examples/raw-wasm-toggle/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the raw-wasm toggle failed (is `rustup target add wasm32-wasip1` done?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wasm: PathBuf = target_dir.join("wasm32-wasip1/release/raw_wasm_toggle.wasm");
        std::fs::read(&wasm).expect("the built module exists")
    })
    .clone()
}

/// The machine `tests/fixtures/machines/<name>.js` bundled as `smply` bundles machines (esbuild,
/// ES module, XState imported from `npm:xstate`), with the esbuild that building the guest
/// installed under `guest/js/node_modules`. Bundles may also carry their own copy of a
/// package found there (e.g. `xstate5`).
pub fn js_bundle(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join("guest/js/node_modules");
    let esbuild = modules.join(".bin/esbuild");
    assert!(
        esbuild.is_file(),
        "{} is missing: build the crate once (build.rs installs it) or run scripts/setup.sh",
        esbuild.display()
    );
    // Unique per call: tests of one binary may bundle the same machine at the same time.
    static BUNDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = BUNDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bundles")
        .join(format!("{name}-{}-{n}.js", std::process::id()));
    let output = Command::new(esbuild)
        .arg(root.join(format!("tests/fixtures/machines/{name}.js")))
        .args([
            "--bundle",
            "--platform=browser",
            "--format=esm",
            "--minify",
            "--keep-names",
            "--legal-comments=none",
            "--drop:debugger",
            "--define:process.env.NODE_ENV=\"production\"",
            "--external:npm:xstate",
            "--alias:xstate=npm:xstate",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", out.display()))
        .env("NODE_PATH", &modules)
        .output()
        .expect("esbuild runs");
    assert!(
        output.status.success(),
        "bundling {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bundle = std::fs::read(&out).expect("esbuild wrote the bundle");
    let _ = std::fs::remove_file(&out);
    bundle
}

/// A bundled JavaScript machine as machine code, built off the reactor.
pub async fn js_code(name: &'static str) -> MachineCode {
    let bundle = tokio::task::spawn_blocking(move || js_bundle(name))
        .await
        .unwrap();
    MachineCode::new(bundle, 10_000_000).unwrap()
}

/// The toggle machine as machine code, built off the reactor.
pub async fn toggle_code() -> MachineCode {
    let wasm = tokio::task::spawn_blocking(toggle_wasm).await.unwrap();
    MachineCode::new(wasm, 10_000_000).unwrap()
}

/// A config for tests: two workers, a cache in `cache_dir`, short deadline.
pub fn config(cache_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: cache_dir.to_path_buf(),
        call_deadline: Duration::from_secs(5),
        workers: 2,
        ..RuntimeConfig::default()
    }
}

pub fn runtime(cache_dir: &Path) -> Runtime {
    Runtime::new(config(cache_dir)).unwrap()
}

pub fn init_input(name: &str) -> InitInput {
    InitInput {
        machine_instance_name: name.into(),
        context: serde_json::json!({}),
        auth_context: serde_json::json!({ "sub": name }),
    }
}

/// Runs `test` and fails it if it takes longer than `secs`.
pub async fn within<T>(secs: u64, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), test)
        .await
        .expect("the test ran past its timeout")
}
