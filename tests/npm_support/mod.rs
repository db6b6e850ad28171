//! Running the real npm packages of `tests/compat` (smply, `@statebacked/client`,
//! `@statebacked/token`) under Node, with a deadline, against a server the test started.
//!
//! Every Node process is started with `--import loopback-only.mjs`, which refuses any TCP or
//! TLS connection to a non-loopback host; a refusal fails the test. smply is always given
//! `-u <our URL>` and a `HOME` holding the session `statewire smply-login` wrote, so it never
//! needs its hosted login service.

#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one Node process may run.
const NODE_TIMEOUT: Duration = Duration::from_secs(90);
/// What `loopback-only.mjs` prints when it refuses a connection.
const REFUSED_MARK: &str = "loopback-only: refused";

pub fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("compat")
}

/// Installs the pinned packages (`npm ci`) unless `node_modules` is already up to date with
/// the lock file; once per test binary. Install scripts are skipped: esbuild's only checks
/// its binary, and `@deepkit/type-compiler`'s would rewrite the installed TypeScript.
pub fn ensure_packages() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = compat_dir();
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let lock = modified(&dir.join("package-lock.json")).expect("package-lock.json exists");
        let installed = modified(&dir.join("node_modules").join(".package-lock.json"));
        if installed.is_some_and(|installed| installed >= lock) {
            return;
        }
        let output = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .args(["--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("npm runs (scripts/setup.sh installs it)");
        assert!(
            output.status.success(),
            "npm ci in tests/compat failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Node's major version, from `node --version`.
fn node_major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let output = Command::new("node")
            .arg("--version")
            .output()
            .expect("node runs (scripts/setup.sh installs it)");
        let version = String::from_utf8_lossy(&output.stdout);
        version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .unwrap_or_else(|| panic!("unexpected node --version output {version:?}"))
    })
}

/// `node` with the loopback guard and, before Node 22, the flag that enables the global
/// `WebSocket` the client uses.
fn node(home: &Path) -> Command {
    let mut command = Command::new("node");
    if node_major() < 22 {
        command.arg("--experimental-websocket");
    }
    command
        .arg("--import")
        .arg(compat_dir().join("loopback-only.mjs"))
        .current_dir(compat_dir())
        .env("HOME", home)
        .env_remove("NODE_OPTIONS");
    command
}

/// What one Node process printed.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with everything printed unless the process exited with status 0.
    pub fn ok(self) -> Run {
        assert!(self.success, "{} failed:\n{self}", self.what);
        self
    }

    /// Panics unless the process failed and stderr contains `text`.
    pub fn fails_with(self, text: &str) -> Run {
        assert!(
            !self.success && self.stderr.contains(text),
            "{} should fail with {text:?}:\n{self}",
            self.what
        );
        self
    }

    /// The JSON value smply printed: from the first line that opens an object or array to
    /// the end of stdout (smply prints notes before it on some commands).
    pub fn json(&self) -> Value {
        let start = self
            .stdout
            .lines()
            .position(|line| line.starts_with('{') || line.starts_with('['))
            .unwrap_or_else(|| panic!("{} printed no JSON:\n{self}", self.what));
        let text: Vec<&str> = self.stdout.lines().skip(start).collect();
        serde_json::from_str(&text.join("\n"))
            .unwrap_or_else(|e| panic!("{} printed invalid JSON ({e}):\n{self}", self.what))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` with `input` on stdin (then closed: no TTY, so nothing waits on a prompt),
/// killing it past [`NODE_TIMEOUT`]. Fails the test if the loopback guard refused anything.
fn run(what: String, mut command: Command, input: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A process that exits without reading its input is fine.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling node") {
            break status;
        }
        if started.elapsed() > NODE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {NODE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        what,
        success: status.success(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        !run.stderr.contains(REFUSED_MARK),
        "{} tried to reach a host other than the test server:\n{run}",
        run.what
    );
    run
}

/// Runs a script of `tests/compat` with `env` added.
pub fn script(home: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = node(home);
    command.arg(name).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    run(format!("node {name}"), command, "")
}

/// smply, aimed at one server, acting with the session stored in `home`.
pub struct Smply {
    pub home: PathBuf,
    pub url: String,
}

impl Smply {
    /// `smply ARGS -u URL` with nothing on stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, "")
    }

    /// `smply ARGS -u URL` with `input` on stdin, e.g. the name a confirmation prompt asks for.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        let mut command = node(&self.home);
        command
            .arg(compat_dir().join("node_modules/smply/dist/index.js"))
            .args(args)
            .args(["-u", &self.url]);
        run(format!("smply {}", args.join(" ")), command, input)
    }

    /// Runs a command that must succeed and returns the JSON it printed.
    pub fn json(&self, args: &[&str]) -> Value {
        self.run(args).ok().json()
    }
}
