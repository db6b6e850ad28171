//! `statewire serve`: run the server until SIGINT or SIGTERM.
//!
//! Once ready it prints exactly one line to stdout, `statewire listening on http://ADDR` (with
//! the real port when port 0 was asked), for scripts and tests to read; everything else (logs,
//! hints) goes to stderr. Logs are filtered by `STATEWIRE_LOG`, else `RUST_LOG`, else `info`.
//!
//! The first signal starts a graceful shutdown bounded by `shutdown_grace_ms`; a second one
//! exits at once with status 130.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use statewire::api::MetricsRenderer;
use statewire::config::{Config, Overrides, StoreKind};
use statewire::server::Extensions;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct Args {
    /// TCP port to listen on; 0 picks a free one [default: 8080].
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    host: Option<String>,
    /// Directory for the embedded store, caches and the admin credential
    /// [default: ./statewire-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config file (else `STATEWIRE_CONFIG`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which store to use: embedded, memory or scylla [default: embedded].
    #[arg(long)]
    store: Option<StoreKind>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    init_logging();
    let flags = Overrides {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        store: args.store,
    };
    let config = Config::load(args.config.as_deref(), std::env::vars(), &flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("statewire")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut signals = Signals::watch()?;
    let grace = config.shutdown_grace();
    let data_dir = config.data_dir.clone();
    let metrics = match statewire::metrics::install() {
        Ok(exporter) => Some(Arc::new(exporter) as Arc<dyn MetricsRenderer>),
        Err(e) => {
            tracing::warn!(error = %e, "metrics unavailable; /metrics answers 404");
            None
        }
    };
    let extensions = Extensions {
        metrics,
        ..Extensions::default()
    };
    let server = statewire::server::start_with(config, extensions).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "statewire listening on {}", server.url())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "get an admin token with: {} token --admin --data-dir {}",
        this_command(),
        data_dir.display()
    );

    let signal = signals.next().await;
    tracing::info!(signal, "signal received; shutting down");
    tokio::spawn(async move {
        let signal = signals.next().await;
        tracing::warn!(signal, "second signal; exiting at once");
        std::process::exit(130);
    });
    server.shutdown(grace).await?;
    Ok(())
}

/// How to run this same binary from the current directory, for hints that must work when
/// pasted: `target/release/statewire` from the repository root, else the absolute path.
fn this_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "statewire".to_owned();
    };
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(PathBuf::from));
    match relative {
        // A bare name would be looked up on PATH; `./` keeps it pointing here.
        Some(path) if path.parent() == Some(std::path::Path::new("")) => {
            format!("./{}", path.display())
        }
        Some(path) => path.display().to_string(),
        None => exe.display().to_string(),
    }
}

/// SIGINT and SIGTERM, watched from start so that none is missed between two waits.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
        })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Logs to stderr, filtered by `STATEWIRE_LOG`, else `RUST_LOG`, else `info`.
fn init_logging() {
    let filter = std::env::var("STATEWIRE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
