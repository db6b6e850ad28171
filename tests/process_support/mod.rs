//! The real `statewire` binary as a child process: `serve` on 127.0.0.1 port 0 with a given
//! data directory, its address read from the ready line, and a hard kill for crash tests.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The line `statewire serve` prints once it listens, before the URL.
const READY_PREFIX: &str = "statewire listening on ";

/// A running `statewire serve`; killed with SIGKILL when dropped.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    /// Where the server's stderr (its logs) goes, for failure messages.
    pub log_path: PathBuf,
}

/// Options of one `statewire serve` run.
pub struct Serve<'a> {
    pub data_dir: &'a Path,
    /// `embedded` or `memory`.
    pub store: &'a str,
    /// Extra `STATEWIRE_*` settings.
    pub env: Vec<(&'static str, String)>,
}

impl<'a> Serve<'a> {
    pub fn embedded(data_dir: &'a Path) -> Self {
        Serve {
            data_dir,
            store: "embedded",
            env: Vec::new(),
        }
    }

    /// Starts the binary and waits for its ready line; its stderr goes to `log_path`.
    pub fn start(self, log_path: &Path) -> Served {
        let log_path = log_path.to_owned();
        let log = File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_statewire"));
        command
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--store",
                self.store,
            ])
            .arg("--data-dir")
            .arg(self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        // Settings from the environment running the tests must not leak into the server.
        for (name, _) in std::env::vars() {
            if name.starts_with("STATEWIRE_") {
                command.env_remove(name);
            }
        }
        command.env("STATEWIRE_LOG", "warn");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the statewire binary starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = line
            .trim_end()
            .strip_prefix(READY_PREFIX)
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|addr| addr.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("statewire serve did not start ({read:?}, first line {line:?}); stderr:\n{log}");
        };
        assert!(addr.ip().is_loopback(), "the server listens on {addr}");
        Served {
            child,
            addr,
            log_path,
        }
    }
}

impl Served {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// `kill` from async code: the reaping wait runs off the runtime's worker threads.
    pub async fn kill_async(self) {
        tokio::task::spawn_blocking(move || self.kill())
            .await
            .expect("kill");
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
