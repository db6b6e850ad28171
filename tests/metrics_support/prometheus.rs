//! A real Prometheus for tests: the Debian package's binary, started on loopback with its own
//! configuration and data directory, scraping one target every second.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::process::{Child, Command};

/// How long Prometheus gets to report ready; it takes about a second here.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// A running Prometheus; killed when dropped.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    client: Client<HttpConnector, Empty<Bytes>>,
    dir: tempfile::TempDir,
}

/// One series of an instant-vector result.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

/// The `prometheus` binary on `PATH`. Fails the test, pointing at the setup script, when it
/// is not installed.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the `prometheus` binary is not on PATH; run scripts/setup.sh \
                 (it installs the Debian package `prometheus`, as CI does)"
            )
        })
}

fn config(target: SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: statewire\n    metrics_path: /metrics\n\
         \x20   static_configs:\n      - targets: ['{target}']\n"
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (which must be a loopback address this test owns)
    /// and waits until it is ready. Retries with another port if the chosen one was taken in
    /// the meantime.
    pub async fn start(target: SocketAddr) -> Self {
        assert!(
            target.ip().is_loopback(),
            "only a loopback target is scraped"
        );
        let binary = binary();
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("prometheus.yml"), config(target)).unwrap();
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let child = spawn(&binary, dir.path(), addr);
            let client = Client::builder(TokioExecutor::new()).build_http();
            let mut prometheus = Self {
                child,
                addr,
                client,
                dir,
            };
            if prometheus.wait_ready().await {
                return prometheus;
            }
            last_log = prometheus.log();
        }
        panic!("prometheus did not become ready; its last log:\n{last_log}");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + READY_LIMIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _)) = self.get("/-/ready").await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// What Prometheus has logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn get(&self, path_and_query: &str) -> Result<(u16, Bytes), String> {
        let uri = format!("http://{}{path_and_query}", self.addr);
        let response = self
            .client
            .get(uri.parse().map_err(|e| format!("{e}"))?)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes()))
    }

    /// Evaluates `expr` now and returns its instant vector (a scalar comes back as one series
    /// without labels). Panics on a query error, with Prometheus's message.
    pub async fn query(&self, expr: &str) -> Vec<Series> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (status, body) = self
            .get(&path)
            .await
            .unwrap_or_else(|e| panic!("query {expr}: {e}"));
        let reply: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("query {expr}: reply is not JSON ({e})"));
        assert!(
            status == 200 && reply["status"] == "success",
            "query {expr} failed ({status}): {reply}"
        );
        let data = &reply["data"];
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Series {
                    labels: s["metric"].as_object().cloned().unwrap_or_default(),
                    value: sample_value(&s["value"]),
                })
                .collect(),
            Some("scalar") => vec![Series {
                labels: Default::default(),
                value: sample_value(&data["result"]),
            }],
            other => panic!("query {expr}: unexpected result type {other:?}"),
        }
    }

    /// Waits until the target has been scraped `scrapes` more times. The first scrape comes
    /// about 5 s after start (Prometheus applies discovered targets every 5 s); the limit leaves
    /// room for a loaded machine.
    pub async fn wait_scrapes(&self, scrapes: usize) {
        let limit = Duration::from_secs(15 + 3 * scrapes as u64);
        let count = || async {
            self.query("count_over_time(up{job=\"statewire\"}[10m])")
                .await
                .first()
                .map_or(0.0, |s| s.value)
        };
        let target = count().await + scrapes as f64;
        let deadline = tokio::time::Instant::now() + limit;
        while count().await < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus did not scrape {scrapes} times within {limit:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn spawn(binary: &Path, dir: &Path, addr: SocketAddr) -> Child {
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// `[unix_seconds, "value"]` → the value; `NaN` and `±Inf` included.
fn sample_value(pair: &Value) -> f64 {
    match pair[1].as_str() {
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(text) => text.parse().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
