//! `statewire-load`: load scenarios that drive a real statewire server over its real protocols
//! and print throughput and latency percentiles. One subcommand per scenario, one file each.
//!
//! - `fanout`: one instance, many WebSocket subscribers; fan-out latency, delivered messages/s
//!   and memory per connection, against a bare tokio-tungstenite broadcast server as ceiling.
//!
//! Shared parts: `target` (spawning servers and reading their memory), `http` (a keep-alive
//! HTTP/1.1 client), `percentiles`. `bare` is the broadcast server `fanout` compares against.

mod bare;
mod fanout;
mod http;
mod percentiles;
mod target;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "statewire-load",
    about = "Load scenarios against a statewire server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fan-out of one instance's updates to many WebSocket subscribers.
    Fanout(fanout::Args),
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
        Command::Fanout(args) => runtime.block_on(fanout::run(args)),
        Command::BareServer(args) => runtime.block_on(bare::run(args)),
    }
}
