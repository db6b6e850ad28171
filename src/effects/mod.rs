//! Host operations that machine code asks for while its services and custom actions run:
//! `fetch` under an address policy, and `sleep`.
//!
//! The guest does no I/O. It hands the host an operation (docs/machine-abi.md, "Host
//! operations"), the host performs it here and hands back the JSON result the guest accepts.
//! A failed `fetch` is never an `Err`: it is an `{"ok": false, "error": …}` result, which the
//! guest turns into the `TypeError` a failed `fetch` rejects with.
//!
//! - [`policy`]: which resolved addresses a `fetch` may dial (`effects.fetch.allow`).
//! - [`ranges`]: the restricted address blocks (loopback, private, link-local, …).
//! - `request`, `target`: the request object and its URL, checked.
//! - `fetch`: the HTTP/1.1 client (TLS by rustls), redirects, limits.

mod error;
mod fetch;
pub mod policy;
pub mod ranges;
mod request;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::config::FetchConfig;
use crate::metrics::fetch::{self as fetch_metrics, Outcome};

pub use error::FetchError;
pub use policy::{AddressPolicy, AllowEntry, Denial};

use fetch::{Client, Fetched};
use request::FetchRequest;

/// The longest `sleep` when none is set with [`HostOps::with_max_sleep`]. Waits inside a
/// running service end with the module instance, so longer ones buy nothing.
pub const DEFAULT_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Why [`HostOps`] could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostOpsError {
    #[error("effects.fetch.allow: {0}")]
    Policy(String),
    #[error("cannot set up TLS for fetch: {0}")]
    Tls(String),
}

/// Performs host operations. Cheap to clone: clones share one client and policy.
#[derive(Clone)]
pub struct HostOps {
    inner: Arc<Inner>,
    max_sleep: Duration,
}

struct Inner {
    client: Client,
    timeout: Duration,
    max_request_bytes: u64,
}

impl HostOps {
    pub fn new(config: &FetchConfig) -> Result<HostOps, HostOpsError> {
        let policy = AddressPolicy::new(&config.allow).map_err(HostOpsError::Policy)?;
        let tls = fetch::tls_connector().map_err(HostOpsError::Tls)?;
        Ok(HostOps {
            inner: Arc::new(Inner {
                client: Client {
                    policy,
                    tls,
                    max_response_bytes: config.max_response_bytes,
                    max_redirects: config.max_redirects,
                },
                timeout: Duration::from_millis(config.timeout_ms),
                max_request_bytes: config.max_request_bytes,
            }),
            max_sleep: DEFAULT_MAX_SLEEP,
        })
    }

    /// The same operations with `sleep` bounded by `max` instead of [`DEFAULT_MAX_SLEEP`].
    pub fn with_max_sleep(self, max: Duration) -> HostOps {
        HostOps {
            max_sleep: max,
            ..self
        }
    }

    /// Performs the `request` of a `fetch` operation for a machine named `machine` and returns
    /// its result object: `{"ok": true, "status", "statusText", "headers", "body" |
    /// "bodyBase64", "url", "redirected"}` or `{"ok": false, "error"}`. Never panics and never
    /// fails otherwise: a malformed request is an `ok: false` result saying what is wrong.
    pub async fn fetch(&self, machine: &str, request: &Value) -> Value {
        let started = Instant::now();
        let parsed = FetchRequest::parse(request, self.inner.max_request_bytes);
        let (method, host) = match &parsed {
            Ok(r) => (r.method.to_string(), r.target.host.clone()),
            Err(_) => (String::new(), String::new()),
        };
        let result = match parsed {
            Ok(req) => self.send(req).await,
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        match result {
            Ok(fetched) => {
                let outcome = if fetched.status.as_u16() >= 400 {
                    Outcome::HttpError
                } else {
                    Outcome::Ok
                };
                fetch_metrics::finished(outcome, elapsed);
                tracing::debug!(
                    machine,
                    method,
                    host,
                    outcome = outcome.label(),
                    status = fetched.status.as_u16(),
                    redirects = fetched.redirects,
                    bytes = fetched.body.len(),
                    elapsed_ms,
                    "fetch finished"
                );
                success(fetched)
            }
            Err(e) => {
                let outcome = e.outcome();
                fetch_metrics::finished(outcome, elapsed);
                if outcome == Outcome::Refused {
                    tracing::info!(machine, method, host, outcome = outcome.label(), error = %e, elapsed_ms, "fetch refused");
                } else {
                    tracing::debug!(machine, method, host, outcome = outcome.label(), error = %e, elapsed_ms, "fetch failed");
                }
                json!({"ok": false, "error": e.to_string()})
            }
        }
    }

    /// Waits `ms` milliseconds, at most the maximum sleep; the result of a `sleep` operation
    /// is `{}`.
    pub async fn sleep(&self, ms: u64) {
        let wanted = Duration::from_millis(ms);
        if wanted > self.max_sleep {
            tracing::debug!(
                ms,
                max_ms = self.max_sleep.as_millis() as u64,
                "sleep shortened to the maximum"
            );
        }
        tokio::time::sleep(wanted.min(self.max_sleep)).await;
    }

    async fn send(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        let host = req.target.host.clone();
        match tokio::time::timeout(self.inner.timeout, self.inner.client.send(req)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                host,
                ms: self.inner.timeout.as_millis() as u64,
            }),
        }
    }
}

/// The `ok: true` result: repeated headers joined with `", "`, the body as text when it is
/// UTF-8, else as base64.
fn success(fetched: Fetched) -> Value {
    let mut headers = Map::new();
    for name in fetched.headers.keys() {
        let joined = fetched
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let status_text = fetched
        .reason
        .or_else(|| fetched.status.canonical_reason().map(str::to_owned))
        .unwrap_or_default();
    let mut result = json!({
        "ok": true,
        "status": fetched.status.as_u16(),
        "statusText": status_text,
        "headers": headers,
        "url": fetched.url,
        "redirected": fetched.redirects > 0,
    });
    let (key, body) = match String::from_utf8(fetched.body.to_vec()) {
        Ok(text) => ("body", text),
        Err(_) => (
            "bodyBase64",
            base64::engine::general_purpose::STANDARD.encode(&fetched.body),
        ),
    };
    result[key] = Value::String(body);
    result
}
