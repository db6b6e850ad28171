//! `events`: durable events per second and event → reply latency, over HTTP keep-alive
//! connections or WebSocket command connections.
//!
//! Each connection sends `toggle` to one instance of the raw-wasm toggle (connection `c` to
//! instance `c mod M`), and every reply means the transition is durable. In a closed loop each
//! connection sends its next event when the previous reply came; in an open loop (`--rate`)
//! events are due on a fixed schedule (see `sender`). With `--subscribers S`, S WebSocket
//! subscribers per instance also measure commit → last subscriber.
//!
//! The run is a warm-up, then the measured window; throughput and latency cover only the
//! window, the totals and error counts the whole run.

mod client;
mod report;
mod sender;
mod stats;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;

use crate::percentiles::Summary;
use crate::target::{self, Process};
use client::EventClient;
pub use report::EventsReport;
use sender::Sender;
use stats::{Live, Tally, Window};
use watch::Watchers;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `POST /machines/{m}/i/{i}/events` on keep-alive HTTP/1.1 connections.
    Http,
    /// `send-event` commands on `/rt` WebSocket connections.
    Ws,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Ws => "ws",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Start this statewire binary on a free loopback port and run against it.
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub spawn: Option<PathBuf>,
    /// A running server instead, e.g. http://127.0.0.1:8080 (needs --token).
    #[arg(long, requires = "token")]
    pub url: Option<String>,
    /// An admin token of that server (`statewire token --admin`).
    #[arg(long)]
    pub token: Option<String>,
    /// The raw-wasm toggle machine module, built from examples/raw-wasm-toggle.
    #[arg(long)]
    pub machine: PathBuf,
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,
    /// Instances of the machine that events go to.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Connections sending events (at least one per instance) [default: one per instance].
    #[arg(long)]
    pub connections: Option<usize>,
    /// Open loop at this many events per second over all connections; closed loop without.
    #[arg(long)]
    pub rate: Option<f64>,
    /// WebSocket subscribers per instance.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Warm-up before the window, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// An event without a reply after this long counts as a `timeout` error.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// The store of a spawned server: `embedded` (durable, the default) or `memory`.
    #[arg(long, default_value = "embedded")]
    pub store: String,
    /// Where a spawned server's data directory is made (the disk being measured).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub data_dir: PathBuf,
    /// Write the figures to this JSON file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl Args {
    fn connections(&self) -> usize {
        self.connections.unwrap_or(self.instances)
    }

    /// Checks what clap cannot: counts, durations and the rate.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.instances >= 1, "--instances must be at least 1");
        anyhow::ensure!(
            self.connections() >= self.instances,
            "--connections must be at least --instances (each connection sends to one instance)"
        );
        anyhow::ensure!(
            self.duration_s > 0.0 && self.warmup_s >= 0.0,
            "--duration-s must be positive and --warmup-s not negative"
        );
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate > 0.0, "--rate must be positive");
        }
        Ok(())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate()?;
    let (spawned, addr, admin) = match (&args.spawn, &args.url) {
        (Some(binary), _) => {
            let server = target::spawn_statewire(binary, &args.store, &args.data_dir).await?;
            let (addr, admin) = (server.process.addr, server.admin_token.clone());
            (Some(server.process), addr, admin)
        }
        (None, Some(url)) => {
            let admin = args.token.clone().context("--url needs --token")?;
            (None, parse_url(url)?, admin)
        }
        (None, None) => anyhow::bail!("give --spawn or --url"),
    };
    let outcome = measure(&args, addr, &admin, spawned.as_ref()).await;
    if let Some(process) = spawned {
        process.stop().await;
    }
    let report = outcome?;
    report.print();
    if let Some(path) = &args.report {
        crate::report::write(path, &report)?;
    }
    Ok(())
}

async fn measure(
    args: &Args,
    addr: SocketAddr,
    admin: &str,
    spawned: Option<&Process>,
) -> anyhow::Result<EventsReport> {
    // A fresh machine name per run, so runs against one server do not collide.
    let machine = format!("load-{}", crate::fanout::now_us() / 1000);
    let bench = crate::setup::prepare(addr, admin, &machine, &args.machine).await?;
    let names: Vec<String> = (0..args.instances).map(|i| format!("i{i}")).collect();
    let tokens: Vec<String> = names.iter().map(|n| bench.signer.for_instance(n)).collect();
    bench.create_instances(&names).await?;
    let watchers = if args.subscribers > 0 {
        Some(Watchers::connect(addr, &machine, &names, &tokens, args.subscribers).await?)
    } else {
        None
    };

    let timeout = Duration::from_millis(args.timeout_ms);
    let mut clients = Vec::new();
    for c in 0..args.connections() {
        let instance = c % args.instances;
        let token = tokens[instance].clone();
        let mut client = EventClient::new(
            args.protocol,
            addr,
            &machine,
            &names[instance],
            token,
            timeout,
        );
        client
            .connect()
            .await
            .map_err(|f| anyhow::anyhow!("connection {c}: {}", f.kind))?;
        clients.push((instance, client));
    }

    let window = Window::new(
        Duration::from_secs_f64(args.warmup_s),
        Duration::from_secs_f64(args.duration_s),
    );
    let live = Arc::new(Live::default());
    let connections = clients.len();
    let mut senders = JoinSet::new();
    for (c, (instance, client)) in clients.into_iter().enumerate() {
        // Each connection's share of the rate, staggered so they do not all fire at once.
        let schedule = args.rate.map(|rate| {
            let interval = Duration::from_secs_f64(connections as f64 / rate);
            (
                window.start + interval.mul_f64(c as f64 / connections as f64),
                interval,
            )
        });
        let sender = Sender {
            client,
            instance,
            schedule,
            keep_commits: watchers.is_some(),
        };
        senders.spawn(sender.run(window, live.clone()));
    }
    let progress = tokio::spawn({
        let live = live.clone();
        async move { stats::progress(&live, window).await }
    });

    let mut tally = Tally::default();
    while let Some(done) = senders.join_next().await {
        tally.merge(done?);
    }
    progress.abort();
    // Let the last pushes reach the subscribers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fanout = match watchers {
        Some(w) => {
            let seen = w.finish().await?;
            Some(watch::fanout_figures(
                &tally.committed,
                &seen,
                args.subscribers,
            ))
        }
        None => None,
    };
    Ok(EventsReport {
        scenario: "events",
        protocol: args.protocol.name(),
        mode: if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        target_rate_per_s: args.rate,
        connections,
        instances: args.instances,
        warmup_s: args.warmup_s,
        duration_s: args.duration_s,
        server: match spawned {
            Some(_) => format!("spawned ({} store)", args.store),
            None => args.url.clone().unwrap_or_default(),
        },
        sent: tally.sent,
        ok: tally.ok,
        throughput_events_per_s: tally.ok_in_window as f64 / args.duration_s,
        latency: Summary::of(std::mem::take(&mut tally.latencies_ms)),
        errors: tally.errors,
        fanout,
        server_rss_bytes: spawned.and_then(|p| p.rss_bytes().ok()),
    })
}

/// `http://HOST:PORT[/]` → the socket address (HOST must be an IP address).
fn parse_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url:?}: only http:// URLs are supported"))?;
    rest.trim_end_matches('/')
        .parse()
        .with_context(|| format!("{url:?}: expected http://IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_an_ip_and_a_port() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_url("http://[::1]:9000").unwrap(),
            "[::1]:9000".parse().unwrap()
        );
        assert!(parse_url("https://127.0.0.1:8080").is_err());
        assert!(parse_url("http://localhost").is_err());
    }
}
