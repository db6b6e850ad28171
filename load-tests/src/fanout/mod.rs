//! `fanout`: one instance, N WebSocket subscribers, updates caused by events.
//!
//! For each subscriber count, against a fresh statewire server and then against the bare
//! broadcast server (`bare`), in separate processes on this machine:
//!
//! 1. **connect**: N subscribers connect and subscribe; the server's RSS before and after
//!    gives the memory per idle subscribed connection.
//! 2. **paced**: one event at a time; each waits until every subscriber got its update, then a
//!    pause. Latency to the *last* subscriber is measured two ways: from the moment the event
//!    was sent (µs clocks, includes running the machine and the durable commit), and from the
//!    `ts` in the frame (the commit's wall-clock time in ms, so up to 1 ms pessimistic). For
//!    the bare server `ts` is when it broadcast.
//! 3. **burst**: events back to back (statewire: 16 in flight); delivered messages per second
//!    over all subscribers, from the first send to the last arrival. Updates a subscriber had
//!    no time to take are conflated, so deliveries can be fewer than events × N.
//!
//! Clients and servers share the machine's cores: the numbers are for comparing the two
//! servers and runs of the same build, not absolute capacity.

mod fleet;
mod publisher;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::percentiles::Summary;
use crate::report;
use crate::target::{self, Process};
use fleet::Fleet;
use publisher::Publisher;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The statewire binary to start (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/statewire")]
    statewire: PathBuf,
    /// The raw-wasm toggle machine module, built from examples/raw-wasm-toggle.
    #[arg(long)]
    machine: PathBuf,
    /// Subscriber counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    subscribers: Vec<usize>,
    /// Events of the paced phase.
    #[arg(long, default_value_t = 100)]
    events: u64,
    /// Pause after each paced event, in ms.
    #[arg(long, default_value_t = 20)]
    pause_ms: u64,
    /// Events of the burst phase.
    #[arg(long, default_value_t = 300)]
    burst: u64,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 200)]
    connecting: usize,
    /// Skip the bare broadcast server.
    #[arg(long)]
    no_bare: bool,
    /// The statewire store: `memory` (the default; the bare server stores nothing either) or
    /// `embedded`.
    #[arg(long, default_value = "memory")]
    store: String,
    /// Where the server's data directory is made.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    data_dir: PathBuf,
    /// Write every run's figures to this JSON file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The machine and the one instance whose updates are fanned out.
pub const MACHINE: &str = "bench";
pub const INSTANCE: &str = "fan";

/// What one run measured.
#[derive(Serialize)]
struct Report {
    target: &'static str,
    subscribers: usize,
    connect_s: f64,
    rss_per_connection_bytes: f64,
    from_send: Summary,
    from_commit: Summary,
    all_deliveries_from_send: Summary,
    burst_events_per_s: f64,
    burst_deliveries_per_s: f64,
    burst_delivered_share: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for &n in &args.subscribers {
        let statewire =
            target::spawn_statewire(&args.statewire, &args.store, &args.data_dir).await?;
        let addr = statewire.process.addr;
        let bench =
            crate::setup::prepare(addr, &statewire.admin_token, MACHINE, &args.machine).await?;
        bench.create_instances(&[INSTANCE.to_owned()]).await?;
        let url = format!(
            "ws://{addr}/rt?token={}",
            bench.signer.for_instance(INSTANCE)
        );
        let subscribe = json!({"type": "subscribe-to-instance", "requestId": "r",
            "machineName": MACHINE, "machineInstanceName": INSTANCE})
        .to_string();
        let publisher = Publisher::statewire(&url).await?;
        let report = measure(
            "statewire",
            &statewire.process,
            &url,
            &subscribe,
            publisher,
            n,
            &args,
        )
        .await?;
        print(&report);
        reports.push(report);
        statewire.process.stop().await;

        if !args.no_bare {
            let bare = target::spawn_bare().await?;
            let url = format!("ws://{}/", bare.addr);
            let publisher = Publisher::bare(&url).await?;
            let subscribe = json!({"type": "subscribe"}).to_string();
            let report = measure("bare", &bare, &url, &subscribe, publisher, n, &args).await?;
            print(&report);
            reports.push(report);
            bare.stop().await;
        }
    }
    println!();
    table(&reports);
    if let Some(path) = &args.report {
        report::write(
            path,
            &json!({"scenario": "fanout", "store": args.store, "events": args.events,
                "pause_ms": args.pause_ms, "burst": args.burst, "runs": reports}),
        )?;
    }
    Ok(())
}

async fn measure(
    target: &'static str,
    server: &Process,
    url: &str,
    subscribe: &str,
    mut publisher: Publisher,
    n: usize,
    args: &Args,
) -> anyhow::Result<Report> {
    let rss_before = server.rss_bytes()?;
    let started = Instant::now();
    let fleet = Fleet::connect(url, subscribe, n, args.connecting).await?;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server.rss_bytes()?;
    // Statewire's instance starts at sequence 1; the bare server's at 0.
    let mut seq = if target == "statewire" { 1 } else { 0 };

    let mut sent_us = HashMap::new();
    for _ in 0..args.events {
        seq += 1;
        sent_us.insert(seq, now_us());
        publisher.one(seq).await?;
        anyhow::ensure!(
            fleet.wait_for(seq, Duration::from_secs(30)).await,
            "update {seq} did not reach everyone"
        );
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }
    let burst_first = seq + 1;
    let burst_start_us = now_us();
    publisher.burst(burst_first, args.burst).await?;
    let burst_events_s = (now_us() - burst_start_us) as f64 / 1e6;
    seq += args.burst;
    anyhow::ensure!(
        fleet.wait_for(seq, Duration::from_secs(120)).await,
        "the burst's last update did not reach everyone"
    );
    let seen = fleet.finish().await?;

    let mut last_at: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut all_from_send = Vec::new();
    let (mut burst_deliveries, mut burst_end_us) = (0u64, burst_start_us);
    for arrival in seen.iter().flatten() {
        if let Some(sent) = sent_us.get(&arrival.seq) {
            all_from_send.push(ms_between(*sent, arrival.at_us));
            let entry = last_at.entry(arrival.seq).or_insert((0, arrival.ts_ms));
            entry.0 = entry.0.max(arrival.at_us);
        } else if arrival.seq >= burst_first {
            burst_deliveries += 1;
            burst_end_us = burst_end_us.max(arrival.at_us);
        }
    }
    let from_send = last_at
        .iter()
        .map(|(seq, (at, _))| ms_between(sent_us[seq], *at))
        .collect();
    let from_commit = last_at
        .values()
        .map(|(at, ts_ms)| ms_between(ts_ms * 1000, *at))
        .collect();
    let burst_s = (burst_end_us - burst_start_us) as f64 / 1e6;
    Ok(Report {
        target,
        subscribers: n,
        connect_s,
        rss_per_connection_bytes: rss_after.saturating_sub(rss_before) as f64 / n as f64,
        from_send: Summary::of(from_send),
        from_commit: Summary::of(from_commit),
        all_deliveries_from_send: Summary::of(all_from_send),
        burst_events_per_s: args.burst as f64 / burst_events_s,
        burst_deliveries_per_s: burst_deliveries as f64 / burst_s,
        burst_delivered_share: burst_deliveries as f64 / (args.burst as f64 * n as f64),
    })
}

fn print(r: &Report) {
    println!("{} with {} subscribers:", r.target, r.subscribers);
    println!(
        "  connect + subscribe: {:.2} s; server memory per connection: {:.1} KiB",
        r.connect_s,
        r.rss_per_connection_bytes / 1024.0
    );
    println!("  last subscriber, from send:   {}", r.from_send);
    println!("  last subscriber, from commit: {}", r.from_commit);
    println!(
        "  every delivery, from send:    {}",
        r.all_deliveries_from_send
    );
    println!(
        "  burst: {:.0} events/s, {:.0} deliveries/s ({:.1}% of events x subscribers delivered)",
        r.burst_events_per_s,
        r.burst_deliveries_per_s,
        r.burst_delivered_share * 100.0
    );
}

fn table(reports: &[Report]) {
    println!("| target | subscribers | KiB/conn | last sub p50 / p99 / max from send (ms) | from commit p50 / p99 / max (ms) | burst deliveries/s |");
    println!("|---|---|---|---|---|---|");
    for r in reports {
        println!(
            "| {} | {} | {:.1} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {:.0} |",
            r.target,
            r.subscribers,
            r.rss_per_connection_bytes / 1024.0,
            r.from_send.p50_ms,
            r.from_send.p99_ms,
            r.from_send.max_ms,
            r.from_commit.p50_ms,
            r.from_commit.p99_ms,
            r.from_commit.max_ms,
            r.burst_deliveries_per_s,
        );
    }
}

fn ms_between(from_us: u64, to_us: u64) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1000.0
}

/// Microseconds since the epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The unsigned integer right after `key` in `text` (e.g. `"seq":`).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits = rest
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::number_after;

    #[test]
    fn numbers_are_read_after_their_key() {
        let frame = r#"{"type":"instance-update","ts":1700000000123,"seq":42}"#;
        assert_eq!(number_after(frame, "\"seq\":"), Some(42));
        assert_eq!(number_after(frame, "\"ts\":"), Some(1_700_000_000_123));
        assert_eq!(number_after(frame, "\"nope\":"), None);
        assert_eq!(number_after(r#"{"seq": 7}"#, "\"seq\":"), Some(7));
    }
}
