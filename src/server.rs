//! Assembly of the server: store, admin credential, runtime, registry, HTTP listener, and the
//! ordered shutdown that takes them down again.
//!
//! [`start`] returns once the listener is bound and every part is ready, so `/healthz`
//! answers 200 from the first connection. [`RunningServer::shutdown`] runs in phases, each
//! bounded by what is left of the grace period:
//!
//! 1. stop accepting: `/healthz` turns 503, the listener is closed, new requests get 503;
//! 2. connections finish the request they are serving, then close;
//! 3. timers stop waking instances; instance writes still running (they are not tied to a
//!    connection, and include timer deliveries) finish;
//! 4. real-time connections receive the updates those writes produced, then are closed with
//!    1001 (going away);
//! 5. the store completes its queued writes and shuts down.
//!
//! When the grace period runs out, remaining connections are dropped; the store still gets
//! its orderly shutdown, so anything acknowledged was durable and nothing half-written is
//! acknowledged.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{self, ApiState, MetricsRenderer, UpgradeHandler, UploadSigner};
use crate::auth::admin::{ensure_admin_key, AdminKey, AdminKeyError};
use crate::auth::Authenticator;
use crate::config::{Config, StoreKind};
use crate::registry::{CommitListener, Registry};
use crate::runtime::{Runtime, RuntimeError};
use crate::session::RealTime;
use crate::store::embedded::EmbeddedStore;
use crate::store::memory::MemoryStore;
use crate::store::scylla::ScyllaStore;
use crate::store::{Store, StoreError};
use crate::timers::Timers;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("store")]
    Store(#[from] StoreError),
    #[error("admin credential")]
    AdminKey(#[from] AdminKeyError),
    #[error("runtime")]
    Runtime(#[from] RuntimeError),
    #[error("effects")]
    Effects(#[from] crate::effects::HostOpsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Optional parts plugged into the server at start.
#[derive(Default)]
pub struct Extensions {
    /// Use this store instead of opening the configured one (tests, embedding).
    pub store: Option<Arc<dyn Store>>,
    /// Serves `/rt` instead of the built-in real-time sessions.
    pub realtime: Option<Arc<dyn UpgradeHandler>>,
    /// Serves `/metrics`.
    pub metrics: Option<Arc<dyn MetricsRenderer>>,
    /// Told about every durable instance write.
    pub listeners: Vec<Arc<dyn CommitListener>>,
    /// Starts no timer service: nothing is delivered unless `Registry::fire_timer` or
    /// `Registry::deliver_due` is called. For tests that drive deliveries themselves.
    #[doc(hidden)]
    pub manual_timers: bool,
}

/// A server that is listening. Dropping it without [`RunningServer::shutdown`] leaves its
/// tasks running until the runtime stops.
pub struct RunningServer {
    addr: SocketAddr,
    api: Arc<ApiState>,
    admin: AdminKey,
    stop_tx: watch::Sender<bool>,
    /// The built-in real-time sessions, unless an embedder replaced them.
    realtime: Option<RealTime>,
    acceptor: tokio::task::JoinHandle<JoinSet<()>>,
    sweeper: tokio::task::JoinHandle<()>,
    timers: Option<Timers>,
}

/// Starts the server with the configured store.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    start_with(config, Extensions::default()).await
}

/// Starts the server with extra parts; see [`Extensions`].
pub async fn start_with(config: Config, ext: Extensions) -> Result<RunningServer, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store = match ext.store {
        Some(store) => store,
        None => open_store(&config).await?,
    };
    let admin = ensure_admin_key(store.as_ref(), &config.data_dir).await?;
    let uploads = UploadSigner::load_or_create(store.as_ref()).await?;
    let runtime = Runtime::new(config.runtime_config())?;
    let registry = Registry::new(store.clone(), runtime.clone(), &config.registry);
    registry.set_retry_policy((&config.effects).into());
    registry.set_services(
        crate::effects::HostOps::new(&config.effects.fetch)?,
        config.effects.settle_window_ms,
    );
    for listener in ext.listeners {
        registry.add_listener(listener);
    }
    // Timers: armed from every commit, and from the wake-up index at start.
    let timers = (!ext.manual_timers)
        .then(|| Timers::start(registry.clone(), store.clone(), &config.effects));
    if let Some(timers) = &timers {
        registry.add_listener(Arc::new(timers.clone()));
    }
    // Real time: the fan-out hears every commit, the sessions serve `/rt`.
    let realtime = ext.realtime.is_none().then(|| RealTime::new(&config));
    if let Some(rt) = &realtime {
        registry.add_listener(Arc::new(rt.fanout().clone()));
    }

    let bind_addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&bind_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: bind_addr.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: bind_addr,
        source,
    })?;

    let mut api = ApiState::new(
        Arc::new(config),
        store.clone(),
        runtime,
        Authenticator::new(store),
        registry.clone(),
        uploads,
        addr,
    );
    api.realtime = match &realtime {
        Some(rt) => Some(Arc::new(rt.clone())),
        None => ext.realtime,
    };
    api.metrics = ext.metrics;
    let api = Arc::new(api);

    let sweeper = registry.start_sweeper();
    // Services cut off by a crash or restart: their error events are owed now.
    let recovering = registry.clone();
    tokio::spawn(async move {
        let n = recovering.recover_services().await;
        if n > 0 {
            tracing::info!(instances = n, "owed service errors delivered at start");
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let acceptor = tokio::spawn(accept_loop(listener, api.clone(), stop_rx));
    tracing::info!(%addr, store = api.config.store.kind.as_str(), "server listening");
    Ok(RunningServer {
        addr,
        api,
        admin,
        stop_tx,
        realtime,
        acceptor,
        sweeper,
        timers,
    })
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    Ok(match config.store.kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Embedded => Arc::new(EmbeddedStore::open(&config.data_dir)?),
        StoreKind::Scylla => Arc::new(ScyllaStore::connect(&config.store.scylla).await?),
    })
}

impl RunningServer {
    /// The bound address (with the real port when port 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.api.store.clone()
    }

    pub fn registry(&self) -> &Registry {
        &self.api.registry
    }

    /// The timer service (`None` when started with `manual_timers`).
    pub fn timers(&self) -> Option<&Timers> {
        self.timers.as_ref()
    }

    /// The built-in real-time sessions (`None` when an embedder serves `/rt`).
    pub fn realtime(&self) -> Option<&RealTime> {
        self.realtime.as_ref()
    }

    /// The operator's admin credential (also in `admin-key.json` under the data directory).
    pub fn admin_key(&self) -> &AdminKey {
        &self.admin
    }

    /// Shuts down in the phases described on this module, within `grace` overall.
    pub async fn shutdown(self, grace: Duration) -> Result<(), ServerError> {
        let deadline = Instant::now() + grace;
        let left = || deadline.saturating_duration_since(Instant::now());
        tracing::info!(grace_ms = grace.as_millis() as u64, "shutdown started");

        self.api.begin_shutdown();
        let _ = self.stop_tx.send(true);
        let mut connections = match self.acceptor.await {
            Ok(connections) => connections,
            Err(e) => {
                tracing::error!(error = %e, "accept loop failed");
                JoinSet::new()
            }
        };
        let open = connections.len();
        let drained = tokio::time::timeout(left(), async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                open,
                left = connections.len(),
                "grace period over; dropping connections"
            );
            connections.abort_all();
        }

        if let Some(timers) = &self.timers {
            timers.stop();
        }
        if !self.api.registry.drain(left()).await {
            tracing::warn!("grace period over; instance writes still running");
        }
        if let Some(rt) = &self.realtime {
            rt.close_all(left()).await;
        }
        self.sweeper.abort();
        self.api.store.shutdown().await?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Accepts connections until told to stop; returns the connections still open.
async fn accept_loop(
    listener: TcpListener,
    api: Arc<ApiState>,
    mut stop_rx: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, api.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stopped(&mut stop_rx) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    // A panicking handler takes only its own connection down.
                    tracing::error!(error = %e, "connection task failed");
                }
            }
        }
    }
    connections
}

/// Serves one connection until it closes, or until shutdown, when it finishes the request in
/// progress and closes. Upgraded connections (WebSockets) leave this task at the upgrade.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    api: Arc<ApiState>,
    mut stop_rx: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(api::handle(api, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop_rx) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Resolves once shutdown was asked (at once if it already was). The watch guard is dropped
/// before returning, so no lock is held across the caller's awaits.
async fn stopped(stop_rx: &mut watch::Receiver<bool>) {
    let _ = stop_rx.wait_for(|stop| *stop).await;
}
