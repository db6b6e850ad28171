//! Builds the JavaScript machine module (`guest/`, see scripts/build-guest.sh) and leaves it at
//! `$OUT_DIR/statewire_guest.wasm`, where the runtime embeds it with
//! `include_bytes!(concat!(env!("OUT_DIR"), "/statewire_guest.wasm"))`.
//!
//! When `STATEWIRE_GUEST_WASM` names an existing file, that file is used instead and nothing is
//! built. The guest's own cargo target directory is `<this build's target directory>/guest`,
//! so its dependencies are compiled once per target directory.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// What the guest is built from; a change to any of these rebuilds it.
const GUEST_INPUTS: &[&str] = &[
    "guest/Cargo.toml",
    "guest/Cargo.lock",
    "guest/build.rs",
    "guest/src",
    "guest/c",
    "guest/js/package.json",
    "guest/js/package-lock.json",
    "guest/js/build.mjs",
    "guest/js/src",
    "scripts/build-guest.sh",
];

fn main() {
    for input in GUEST_INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-env-changed=STATEWIRE_GUEST_WASM");

    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let wasm = out_dir.join("statewire_guest.wasm");

    if let Some(prebuilt) = env::var_os("STATEWIRE_GUEST_WASM").map(PathBuf::from) {
        if prebuilt.is_file() {
            if let Err(e) = std::fs::copy(&prebuilt, &wasm) {
                fail(&format!("cannot copy {}: {e}", prebuilt.display()));
            }
            return;
        }
    }

    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| fail("CARGO_MANIFEST_DIR is not set")),
    );
    let guest_target = target_dir(&out_dir).join("guest");
    let status = Command::new("bash")
        .arg(manifest_dir.join("scripts/build-guest.sh"))
        .arg(&wasm)
        .env("STATEWIRE_GUEST_TARGET_DIR", &guest_target)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "building the guest failed ({status}); if a tool is missing, run scripts/setup.sh"
        )),
        Err(e) => fail(&format!("cannot run scripts/build-guest.sh: {e}")),
    }
}

/// The target directory this build writes into: the nearest ancestor of `OUT_DIR` that cargo
/// marked with `CACHEDIR.TAG`, else the directory four levels up
/// (`<target>/<profile>/build/<package>-<hash>/out`).
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| out_dir.ancestors().nth(4))
        .unwrap_or(out_dir)
        .to_path_buf()
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1)
}
