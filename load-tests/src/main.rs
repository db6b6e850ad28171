//! `statewire-load`: load scenarios that drive a real statewire server over its real protocols
//! and print throughput and latency percentiles. One subcommand per scenario, one file each.
//!
//! - `events`: durable events per second and event → reply latency over HTTP or WebSocket
//!   commands, closed or open loop, optionally with subscribers per instance.
//! - `fsync-baseline`: one fdatasync per event on this disk, the ceiling `events` is set against.
//! - `fanout`: one instance, many WebSocket subscribers; fan-out latency, delivered messages/s
//!   and memory per connection, against a bare tokio-tungstenite broadcast server as ceiling.
//! - `bench-doc`: writes the JSON reports of a run into docs/benchmarks.md.
//!
//! Shared parts: `target` (spawning servers and reading their memory), `setup` (machine,
//! version, key and instances over the API), `token` (end-user tokens), `http` (a keep-alive
//! HTTP/1.1 client), `percentiles`, `report`. `bare` is the broadcast server `fanout` compares
//! against.

mod bare;
mod doc;
mod events;
mod fanout;
mod fsync;
mod http;
mod percentiles;
mod report;
mod setup;
mod target;
mod token;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "statewire-load",
    about = "Load scenarios against a statewire server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Durable events per second and event → reply latency.
    Events(events::Args),
    /// One fdatasync per event on this disk: the baseline of `events`.
    FsyncBaseline(fsync::Args),
    /// Fan-out of one instance's updates to many WebSocket subscribers.
    Fanout(fanout::Args),
    /// Writes the JSON reports of a benchmark run into docs/benchmarks.md.
    BenchDoc(doc::Args),
    /// A bare tokio-tungstenite broadcast server (run by `fanout` as its ceiling).
    #[command(hide = true)]
    BareServer(bare::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Events(args) => runtime.block_on(events::run(args)),
        Command::FsyncBaseline(args) => fsync::run(&args),
        Command::Fanout(args) => runtime.block_on(fanout::run(args)),
        Command::BenchDoc(args) => doc::run(&args),
        Command::BareServer(args) => runtime.block_on(bare::run(args)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let mut argv = vec!["statewire-load"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| cli.command)
    }

    #[test]
    fn events_defaults_to_a_closed_http_loop_with_one_connection_per_instance() {
        let Ok(Command::Events(args)) = parse(&[
            "events",
            "--spawn",
            "sw",
            "--machine",
            "t.wasm",
            "--instances",
            "64",
        ]) else {
            panic!("events parses");
        };
        assert_eq!(args.protocol, events::Protocol::Http);
        assert_eq!(
            (args.instances, args.connections, args.rate),
            (64, None, None)
        );
        assert_eq!((args.duration_s, args.warmup_s), (10.0, 2.0));
        assert_eq!(args.store, "embedded");
        args.validate().unwrap();
    }

    #[test]
    fn events_needs_exactly_one_server() {
        assert!(parse(&["events", "--machine", "t.wasm"]).is_err());
        // --url needs an admin token.
        assert!(parse(&[
            "events",
            "--machine",
            "t.wasm",
            "--url",
            "http://127.0.0.1:1"
        ])
        .is_err());
        assert!(parse(&[
            "events",
            "--machine",
            "t.wasm",
            "--spawn",
            "sw",
            "--url",
            "http://127.0.0.1:1",
            "--token",
            "t"
        ])
        .is_err());
        assert!(parse(&[
            "events",
            "--machine",
            "t.wasm",
            "--url",
            "http://127.0.0.1:1",
            "--token",
            "t"
        ])
        .is_ok());
    }

    #[test]
    fn events_options_are_checked() {
        let Ok(Command::Events(args)) = parse(&[
            "events",
            "--spawn",
            "sw",
            "--machine",
            "m",
            "--protocol",
            "ws",
            "--rate",
            "500",
            "--instances",
            "4",
            "--connections",
            "8",
            "--subscribers",
            "2",
        ]) else {
            panic!("events parses");
        };
        assert_eq!(args.protocol, events::Protocol::Ws);
        assert_eq!((args.rate, args.subscribers), (Some(500.0), 2));
        args.validate().unwrap();
        assert!(parse(&[
            "events",
            "--spawn",
            "sw",
            "--machine",
            "m",
            "--protocol",
            "smtp"
        ])
        .is_err());
        let too_few = |extra: &[&str]| {
            let mut argv = vec!["events", "--spawn", "sw", "--machine", "m"];
            argv.extend_from_slice(extra);
            let Ok(Command::Events(args)) = parse(&argv) else {
                panic!("events parses");
            };
            args.validate().is_err()
        };
        assert!(too_few(&["--instances", "4", "--connections", "2"]));
        assert!(too_few(&["--instances", "0"]));
        assert!(too_few(&["--rate", "0"]));
        assert!(too_few(&["--duration-s", "0"]));
    }

    #[test]
    fn fsync_baseline_takes_a_list_of_writer_counts() {
        let Ok(Command::FsyncBaseline(args)) = parse(&[
            "fsync-baseline",
            "--writers",
            "1,64,256",
            "--duration-s",
            "1.5",
        ]) else {
            panic!("fsync-baseline parses");
        };
        assert_eq!(args.writers, vec![1, 64, 256]);
        assert_eq!(args.duration_s, 1.5);
    }
}
