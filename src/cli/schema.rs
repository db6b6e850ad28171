//! `statewire schema`: print `schema.cql` with keyspace and replication filled in, or apply it
//! to a cluster statement by statement.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use statewire::store::scylla::schema::{self, SchemaParams, DEFAULT_REPLICATION};
use statewire::store::scylla::ScyllaConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Replication map of the keyspace, e.g. "{'class':'NetworkTopologyStrategy','dc1':3}".
    #[arg(long, default_value = DEFAULT_REPLICATION)]
    replication: String,
    /// Create the keyspace with tablets turned off, for ScyllaDB releases that do not support
    /// lightweight transactions on tablet keyspaces (not understood by Cassandra).
    #[arg(long)]
    no_tablets: bool,
    /// Run the statements against the cluster instead of printing them.
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    connection: ScyllaArgs,
}

/// Connection flags for a ScyllaDB cluster. Each overrides the matching
/// `STATEWIRE_SCYLLA_*` variable, which overrides the default.
#[derive(clap::Args, Debug, Default)]
pub struct ScyllaArgs {
    /// Contact points, host[:port], comma-separated [env: STATEWIRE_SCYLLA_NODES].
    #[arg(long, value_delimiter = ',')]
    pub scylla_nodes: Vec<String>,
    /// Keyspace holding statewire's tables [env: STATEWIRE_SCYLLA_KEYSPACE; default: statewire].
    #[arg(long = "scylla-keyspace", visible_alias = "keyspace")]
    pub scylla_keyspace: Option<String>,
    /// Local datacenter [env: STATEWIRE_SCYLLA_LOCAL_DC].
    #[arg(long)]
    pub scylla_local_dc: Option<String>,
    /// User name [env: STATEWIRE_SCYLLA_USERNAME]; the password is read from
    /// STATEWIRE_SCYLLA_PASSWORD only, so it never shows in the process list.
    #[arg(long)]
    pub scylla_username: Option<String>,
    /// Encrypt connections [env: STATEWIRE_SCYLLA_TLS].
    #[arg(long)]
    pub scylla_tls: bool,
    /// CA certificate (PEM) for the nodes' certificates [env: STATEWIRE_SCYLLA_TLS_CA_FILE].
    #[arg(long)]
    pub scylla_tls_ca_file: Option<PathBuf>,
    /// Client-side timeout per request, in ms [env: STATEWIRE_SCYLLA_REQUEST_TIMEOUT_MS].
    #[arg(long)]
    pub scylla_request_timeout_ms: Option<u64>,
}

impl ScyllaArgs {
    /// Defaults, then `STATEWIRE_SCYLLA_*` variables, then these flags.
    pub fn config(&self) -> anyhow::Result<ScyllaConfig> {
        let mut config = ScyllaConfig::from_env()?;
        if !self.scylla_nodes.is_empty() {
            config.nodes = self.scylla_nodes.clone();
        }
        if let Some(k) = &self.scylla_keyspace {
            config.keyspace = k.clone();
        }
        if let Some(dc) = &self.scylla_local_dc {
            config.local_datacenter = Some(dc.clone());
        }
        if let Some(u) = &self.scylla_username {
            config.username = Some(u.clone());
        }
        if self.scylla_tls {
            config.tls = true;
        }
        if let Some(ca) = &self.scylla_tls_ca_file {
            config.tls_ca_file = Some(ca.clone());
        }
        if let Some(ms) = self.scylla_request_timeout_ms {
            config.request_timeout_ms = ms;
        }
        Ok(config)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.connection.config()?;
    let params = SchemaParams {
        keyspace: config.keyspace.clone(),
        replication: args.replication,
        no_tablets: args.no_tablets,
    };
    if !args.apply {
        let script = schema::render(&params)?;
        std::io::stdout().write_all(script.as_bytes())?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let count = runtime
        .block_on(schema::apply(&config, &params, |statement| {
            let head: String = statement.chars().take(72).collect();
            eprintln!("applying: {head}");
        }))
        .with_context(|| format!("applying the schema to {}", config.nodes.join(",")))?;
    eprintln!(
        "schema applied: {count} statements in keyspace {}",
        config.keyspace
    );
    Ok(())
}
