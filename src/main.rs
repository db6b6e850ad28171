//! The `statewire` binary: the server and the command-line tools around it.

mod cli;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "statewire",
    version,
    about = "Run XState machines as durable, real-time instances"
)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
