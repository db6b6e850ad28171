//! HTTP routes on hyper: the State Backed API, `/rt`, `/metrics` and `/healthz`.
//!
//! One request goes: [`handle`] (shutdown gate, CORS preflight, logging) → `router` (path to
//! [`router::Route`], method check, bearer authentication, scope) → one handler per route
//! family (`machines`, `versions`, `upload`, `instances`, `instance_admin`, `keys`) →
//! `response` (JSON or an empty 201/204; errors as `{error, code, parameter?}`).
//!
//! Bodies are read by `body` under a cap enforced while reading. Nothing here holds a lock
//! across an await: the shared state is immutable or internally synchronized.

mod body;
mod cors;
mod instance_admin;
mod instances;
mod keys;
mod machines;
mod response;
mod router;
mod signing;
mod upload;
mod versions;
mod views;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::store::Store;

pub use signing::UploadSigner;

// Shared with the real-time sessions, whose commands answer exactly like these routes.
pub(crate) use instances::{current_version, normalize_event};
pub(crate) use response::error as error_response;
pub(crate) use views::StateView;

/// The body type of every response.
pub type Body = http_body_util::Full<Bytes>;

/// Takes over a `GET /rt` request: checks it (the token may need a store read, hence async),
/// answers `101 Switching Protocols` or an error, and serves the connection once hyper hands
/// it over (`hyper::upgrade::on`).
#[async_trait::async_trait]
pub trait UpgradeHandler: Send + Sync + 'static {
    async fn upgrade(&self, api: Arc<ApiState>, request: Request<Incoming>) -> Response<Body>;
}

/// Renders the Prometheus text exposition for `GET /metrics`.
pub trait MetricsRenderer: Send + Sync + 'static {
    fn render(&self) -> String;
}

/// Everything a request handler may touch. Shared by all connections.
pub struct ApiState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub runtime: Runtime,
    pub auth: Authenticator,
    pub registry: Registry,
    pub uploads: UploadSigner,
    /// The address the server is bound to; the fallback host for `codeUploadUrl`.
    pub local_addr: SocketAddr,
    /// Serves `/rt` when set; without it `/rt` answers 404.
    pub realtime: Option<Arc<dyn UpgradeHandler>>,
    /// Serves `/metrics` when set; without it `/metrics` answers 404.
    pub metrics: Option<Arc<dyn MetricsRenderer>>,
    shutting_down: AtomicBool,
}

impl ApiState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        runtime: Runtime,
        auth: Authenticator,
        registry: Registry,
        uploads: UploadSigner,
        local_addr: SocketAddr,
    ) -> Self {
        Self {
            config,
            store,
            runtime,
            auth,
            registry,
            uploads,
            local_addr,
            realtime: None,
            metrics: None,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// From now on `/healthz` answers 503 and new requests are refused with 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The cap on JSON request bodies: a little above the context cap, so a context at the
    /// limit fits with its envelope, and never below 512 KiB.
    pub fn json_body_limit_bytes(&self) -> usize {
        (self.config.runtime.max_context_bytes + 64 * 1024).max(512 * 1024)
    }
}

/// Answers one request. Never fails: every error becomes a JSON error response.
pub async fn handle(api: Arc<ApiState>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let origin = request.headers().get(http::header::ORIGIN).cloned();

    let mut response = if method == Method::OPTIONS {
        router::preflight(&path)
    } else if api.is_shutting_down() && path != "/healthz" {
        response::error(&ApiError::ShuttingDown)
    } else {
        match router::dispatch(&api, request).await {
            Ok(response) => response,
            Err(e) => {
                log_error(&method, &path, &e);
                response::error_with_allow(&e, &path)
            }
        }
    };
    let preflight = method == Method::OPTIONS;
    cors::decorate(&api.config.cors, origin.as_ref(), preflight, &mut response);
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

fn log_error(method: &Method, path: &str, e: &ApiError) {
    let class = e.class();
    if class.expected {
        tracing::debug!(%method, path, status = class.status.as_u16(), code = class.code, error = %e, "request refused");
    } else {
        tracing::error!(%method, path, status = class.status.as_u16(), code = class.code, error = ?e, "request failed");
    }
}
