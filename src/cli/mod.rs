//! Subcommands of the `statewire` binary, one file each.

pub mod machine;
pub mod schema;
pub mod serve;
pub mod token;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(serve::Args),
    /// Check or run a machine bundle locally, as a machine author.
    #[command(subcommand)]
    Machine(machine::Command),
    /// Print a bearer token for this server.
    Token(token::Args),
    /// Store an admin session for the smply CLI, pointed at this server.
    SmplyLogin(token::SmplyLoginArgs),
    /// Print or apply the ScyllaDB schema.
    Schema(schema::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Machine(cmd) => machine::run(cmd),
        Command::Token(args) => token::run(args),
        Command::SmplyLogin(args) => token::smply_login(args),
        Command::Schema(args) => schema::run(args),
    }
}
