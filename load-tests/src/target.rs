//! The servers a scenario runs against, each in its own process so that its memory can be
//! read apart from the load generator's: a statewire server (the binary given, on a free
//! loopback port) or the bare broadcast server of `bare`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// A server process on loopback.
pub struct Process {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    data_dir: Option<PathBuf>,
}

impl Process {
    /// Resident memory of the process now (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kb * 1024)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `command` and waits for the stdout line starting with `ready` that ends in the
/// address it listens on.
async fn start(
    mut command: Command,
    ready: &str,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Process> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the server")?;
    let pid = child.id().context("the server exited at once")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await?
            .with_context(|| format!("the server ended before printing {ready:?}"))?;
        if let Some(rest) = line.strip_prefix(ready) {
            let addr = rest.trim().trim_start_matches("http://");
            break addr
                .parse()
                .with_context(|| format!("bad address in {line:?}"))?;
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Process {
        child,
        addr,
        pid,
        data_dir,
    })
}

/// A bare broadcast server: this binary's hidden `bare-server` subcommand.
pub async fn spawn_bare() -> anyhow::Result<Process> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("bare-server");
    start(command, "bare listening on ", None).await
}

/// A statewire server started by this process, and an admin token for it.
pub struct Statewire {
    pub process: Process,
    pub admin_token: String,
}

/// Starts `binary` serving `store` (`embedded` or `memory`) on a free loopback port, with a
/// fresh data directory under `data_parent` (removed when the server is stopped).
pub async fn spawn_statewire(
    binary: &Path,
    store: &str,
    data_parent: &Path,
) -> anyhow::Result<Statewire> {
    let data_dir = data_parent.join(format!(
        "statewire-load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    let mut command = Command::new(binary);
    command
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--store",
            store,
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("STATEWIRE_LOG", "warn");
    let process = start(command, "statewire listening on ", Some(data_dir.clone())).await?;
    let admin_token = cli_token(
        binary,
        &[
            "token",
            "--admin",
            "--data-dir",
            &data_dir.to_string_lossy(),
        ],
    )
    .await?;
    Ok(Statewire {
        process,
        admin_token,
    })
}

/// Runs `statewire <args>` and returns the last line of its stdout (a token).
async fn cli_token(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(binary).args(args).output().await?;
    anyhow::ensure!(
        output.status.success(),
        "statewire {}: {}",
        args[0],
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    stdout
        .lines()
        .last()
        .map(str::to_owned)
        .context("statewire token printed nothing")
}
