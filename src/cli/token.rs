//! `statewire token` and `statewire smply-login`.

#[derive(clap::Args)]
pub struct Args {}

#[derive(clap::Args)]
pub struct SmplyLoginArgs {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("token is not available in this build")
}

pub fn smply_login(_args: SmplyLoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("smply-login is not available in this build")
}
