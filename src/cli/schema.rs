//! `statewire schema`: print or apply schema.cql.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("schema is not available in this build")
}
