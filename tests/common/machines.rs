//! The golden machines: built the smply way and run under Node by `tests/machines/*.mjs`, once
//! per test process, before any test reads them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// `tests/machines/expected.mjs`'s output.
#[derive(Debug, Deserialize)]
pub struct Expected {
    pub xstate: Value,
    pub machines: Vec<ExpectedMachine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedMachine {
    pub name: String,
    pub xstate_major: u8,
    /// File names under the output directory: the smply build first, then any variant that
    /// carries its own xstate.
    pub bundles: Vec<String>,
    pub exports: Vec<String>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    pub instance: String,
    pub context: Value,
    pub auth_context: Value,
    /// Step 0 is the initial state (`event` null); step i follows event i.
    pub steps: Vec<ExpectedStep>,
    pub probes: Vec<Probe>,
}

#[derive(Debug, Deserialize)]
pub struct ExpectedStep {
    pub event: Option<Value>,
    pub state: Value,
    pub context: Value,
    pub tags: Vec<String>,
    pub done: bool,
    /// The step's whole normalized effect list, in order (see `effects::compare`).
    pub effects: Vec<Value>,
}

/// One authorizer call and Node's answer.
#[derive(Debug, Deserialize)]
pub struct Probe {
    /// `allowRead` or `allowWrite`.
    pub op: String,
    pub args: Value,
    pub allowed: bool,
}

/// The built bundles and their expectations.
pub struct Suite {
    pub dir: PathBuf,
    pub expected: Expected,
}

impl Suite {
    pub fn machine(&self, name: &str) -> &ExpectedMachine {
        self.expected
            .machines
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no golden machine named {name}"))
    }

    pub fn bundle_path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn machines_src_dir() -> PathBuf {
    repo_root().join("tests").join("machines")
}

/// Builds the bundles and expectations on first use; later calls return the same suite. A
/// failure (no Node, a build error) fails every test that asks, with the same message.
pub fn suite() -> &'static Suite {
    static SUITE: OnceLock<Result<Suite, String>> = OnceLock::new();
    match SUITE.get_or_init(prepare) {
        Ok(suite) => suite,
        Err(message) => panic!("{message}"),
    }
}

fn prepare() -> Result<Suite, String> {
    let src = machines_src_dir();
    let out = repo_root().join("target").join("machines");
    for tool in ["node", "npm"] {
        let found = Command::new(tool).arg("--version").output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Err(format!(
                "the golden machine tests need `{tool}` (Node 20 or newer with npm) on PATH \
                 to build the machines and compute the expected steps with the real xstate"
            ));
        }
    }
    if !src.join("node_modules").join("xstate5").is_dir() {
        run(
            Command::new("npm")
                .arg("ci")
                .arg("--no-audit")
                .arg("--no-fund"),
            &src,
        )?;
    }
    run(Command::new("node").arg("build.mjs").arg(&out), &src)?;
    run(Command::new("node").arg("expected.mjs").arg(&out), &src)?;
    let text = std::fs::read_to_string(out.join("expected.json"))
        .map_err(|e| format!("reading {}: {e}", out.join("expected.json").display()))?;
    let expected = serde_json::from_str(&text).map_err(|e| format!("expected.json: {e}"))?;
    Ok(Suite { dir: out, expected })
}

fn run(command: &mut Command, dir: &Path) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .current_dir(dir)
        .output()
        .map_err(|e| format!("{shown} could not start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{shown} failed in {} ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
