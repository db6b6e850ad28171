//! The servers a scenario runs against, each in its own process so that its memory can be
//! read apart from the load generator's: a statewire server (the binary given, serving the
//! memory store on a free loopback port) or the bare broadcast server of `bare`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::http::Http;

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

/// A statewire server with the toggle machine as `bench`, one instance `fan`, and a token
/// the machine's authorizers accept for it.
pub struct Statewire {
    pub process: Process,
    /// Token of an end user whose `sub` is `fan` (the toggle lets it read and write `fan`).
    pub user_token: String,
}

pub const MACHINE: &str = "bench";
pub const INSTANCE: &str = "fan";

pub async fn spawn_statewire(binary: &Path, machine_wasm: &Path) -> anyhow::Result<Statewire> {
    let data_dir = std::env::temp_dir().join(format!(
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
            "memory",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("STATEWIRE_LOG", "warn");
    let process = start(command, "statewire listening on ", Some(data_dir.clone())).await?;

    let admin = cli_token(
        binary,
        &[
            "token",
            "--admin",
            "--data-dir",
            &data_dir.to_string_lossy(),
        ],
    )
    .await?;
    let mut http = Http::connect(process.addr).await?;
    http.json(Method::POST, "/machines", &admin, &json!({"slug": MACHINE}))
        .await?
        .expect(201, "create machine")?;
    let code = std::fs::read(machine_wasm)
        .with_context(|| format!("cannot read {}", machine_wasm.display()))?;
    upload_version(&mut http, &admin, &code).await?;
    let key = http
        .json(
            Method::POST,
            "/keys",
            &admin,
            &json!({"name": "load", "scopes": ["instances.write", "state.read", "events.write"]}),
        )
        .await?
        .expect(200, "create key")?
        .json()?;
    let (id, secret) = (
        key["id"].as_str().unwrap_or(""),
        key["key"].as_str().unwrap_or(""),
    );
    let claims = json!({"sub": INSTANCE}).to_string();
    let user_token = cli_token(
        binary,
        &[
            "token", "--key", id, "--secret", secret, "--claims", &claims,
        ],
    )
    .await?;
    http.json(
        Method::POST,
        &format!("/machines/{MACHINE}"),
        &user_token,
        &json!({"slug": INSTANCE}),
    )
    .await?
    .expect(200, "create instance")?;
    Ok(Statewire {
        process,
        user_token,
    })
}

/// The three steps of a version upload, as the official client does them.
async fn upload_version(http: &mut Http, admin: &str, code: &[u8]) -> anyhow::Result<()> {
    let step1 = http
        .json(
            Method::POST,
            &format!("/machines/{MACHINE}/v"),
            admin,
            &Value::Null,
        )
        .await?
        .expect(200, "provisional version")?
        .json()?;
    let url = step1["codeUploadUrl"]
        .as_str()
        .context("no codeUploadUrl")?;
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &path[path.find('/').unwrap_or(path.len())..];
    let boundary = "statewire-load-boundary";
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    };
    for (name, value) in step1["codeUploadFields"]
        .as_object()
        .context("no codeUploadFields")?
    {
        field(name, value.as_str().unwrap_or(""));
    }
    field("content-type", "application/javascript");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{MACHINE}.js\"\r\n\
             content-type: application/javascript\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(code);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let uploaded = http
        .call(
            Method::POST,
            path,
            None,
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await?;
    anyhow::ensure!(
        (200..300).contains(&uploaded.status),
        "upload: status {}",
        uploaded.status
    );
    let signed = step1["machineVersionId"]
        .as_str()
        .context("no machineVersionId")?;
    http.json(
        Method::PUT,
        &format!("/machines/{MACHINE}/v/{signed}"),
        admin,
        &json!({"clientInfo": "load", "makeCurrent": true}),
    )
    .await?
    .expect(200, "finalize version")?;
    Ok(())
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
