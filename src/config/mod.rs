//! Layered configuration: defaults, then a TOML file, then `STATEWIRE_*` env, then flags.
//!
//! Each layer only overrides what it names. The file is `--config FILE`, else the path in
//! `STATEWIRE_CONFIG`, else none. A TOML file mirrors [`Config`] field by field:
//!
//! ```toml
//! host = "127.0.0.1"
//! port = 8080
//! data_dir = "./statewire-data"
//! public_url = "https://statewire.example.com"
//! shutdown_grace_ms = 10000
//!
//! [store]
//! kind = "embedded"        # embedded | memory | scylla
//!
//! [cors]
//! allowed_origins = ["*"]
//!
//! [runtime]
//! call_deadline_ms = 10000
//! memory_limit_bytes = 134217728
//! workers = 2
//! max_context_bytes = 400000
//!
//! [registry]
//! max_hot_instances = 100000
//! idle_evict_ms = 600000
//!
//! [websocket]
//! ping_interval_ms = 300000
//! ping_grace_ms = 60000
//! stall_timeout_ms = 30000
//!
//! [effects]
//! retry_interval_ms = 30000
//! max_attempts = 5
//! settle_window_ms = 90000
//! ```
//!
//! A `[store.scylla]` section holds the ScyllaDB settings (`nodes`, `keyspace`, …; see
//! [`ScyllaConfig`]). An `[effects.fetch]` section bounds machines' `fetch` calls (see
//! [`FetchConfig`]).
//!
//! Environment variables (see [`ENV_VARS`]): `STATEWIRE_HOST`, `STATEWIRE_PORT`,
//! `STATEWIRE_DATA_DIR`, `STATEWIRE_STORE`, `STATEWIRE_PUBLIC_URL`, `STATEWIRE_CORS_ORIGINS`
//! (comma-separated), `STATEWIRE_CALL_DEADLINE_MS`, `STATEWIRE_MEMORY_LIMIT_BYTES`,
//! `STATEWIRE_WORKERS`, `STATEWIRE_MAX_CONTEXT_BYTES`, `STATEWIRE_MAX_HOT_INSTANCES`,
//! `STATEWIRE_IDLE_EVICT_MS`, `STATEWIRE_WS_PING_INTERVAL_MS`, `STATEWIRE_WS_PING_GRACE_MS`,
//! `STATEWIRE_WS_STALL_TIMEOUT_MS`, `STATEWIRE_SHUTDOWN_GRACE_MS`,
//! `STATEWIRE_EFFECTS_RETRY_INTERVAL_MS`, `STATEWIRE_EFFECTS_MAX_ATTEMPTS`,
//! `STATEWIRE_EFFECTS_SETTLE_WINDOW_MS`, the `STATEWIRE_SCYLLA_*`
//! variables of [`ScyllaConfig::apply_env`], and the `STATEWIRE_FETCH_*` ones of
//! [`FETCH_ENV_VARS`]. `STATEWIRE_CONFIG` names the file; `STATEWIRE_LOG`
//! is read by `serve`'s logger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod effects;
mod fetch;

pub use effects::EffectsConfig;
pub use fetch::{FetchConfig, FETCH_ENV_VARS, MAX_REDIRECTS_LIMIT};

use crate::runtime::RuntimeConfig;
use crate::store::scylla::{ScyllaConfig, ScyllaConfigError};

/// Why a configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{var}={value:?} is not valid: {reason}")]
    Env {
        var: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("ScyllaDB settings: {0}")]
    Scylla(#[from] ScyllaConfigError),
}

/// Every setting of `statewire serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Loopback by default so a fresh server is not reachable from other
    /// machines; set `0.0.0.0` (or `::`) to serve the network.
    pub host: String,
    /// TCP port; 0 asks the OS for a free one (the real port is printed once listening).
    pub port: u16,
    /// Where the embedded store, the compiled-module cache and the admin credential live.
    pub data_dir: PathBuf,
    /// The URL clients reach this server at, used to build `codeUploadUrl`. When unset, it is
    /// derived from each request's `Host` header as `http://HOST`.
    pub public_url: Option<String>,
    /// How long shutdown waits for in-flight requests and commits before forcing.
    pub shutdown_grace_ms: u64,
    pub store: StoreConfig,
    pub cors: CorsConfig,
    pub runtime: RuntimeLimits,
    pub registry: RegistryLimits,
    pub websocket: WebSocketConfig,
    pub effects: EffectsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            data_dir: PathBuf::from("./statewire-data"),
            public_url: None,
            shutdown_grace_ms: 10_000,
            store: StoreConfig::default(),
            cors: CorsConfig::default(),
            runtime: RuntimeLimits::default(),
            registry: RegistryLimits::default(),
            websocket: WebSocketConfig::default(),
            effects: EffectsConfig::default(),
        }
    }
}

/// Which durable store backs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A single file under the data directory (the default).
    #[default]
    Embedded,
    /// Nothing survives a restart; for tests and demos.
    Memory,
    /// A ScyllaDB cluster, configured by the `[store.scylla]` section.
    Scylla,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded",
            StoreKind::Memory => "memory",
            StoreKind::Scylla => "scylla",
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "embedded" => Ok(StoreKind::Embedded),
            "memory" => Ok(StoreKind::Memory),
            "scylla" => Ok(StoreKind::Scylla),
            other => Err(format!(
                "unknown store {other:?}; use embedded, memory or scylla"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// The `[store.scylla]` section, then `STATEWIRE_SCYLLA_*` variables (see
    /// [`ScyllaConfig::apply_env`]); used when `kind` is `scylla`.
    pub scylla: ScyllaConfig,
}

/// Browser origins allowed to call the API. Auth is a bearer header, never a cookie, so
/// allowing any origin exposes nothing a token does not already grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    pub allowed_origins: Vec<String>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".to_owned()],
        }
    }
}

/// Limits on machine code, following State Backed's published limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeLimits {
    /// Wall-clock deadline for one guest call.
    pub call_deadline_ms: u64,
    /// Linear-memory cap for one guest.
    pub memory_limit_bytes: u64,
    /// Threads that run wasm; defaults to the number of cores.
    pub workers: usize,
    /// Largest context, as UTF-8 JSON.
    pub max_context_bytes: usize,
    /// Warm guests kept per machine module per worker.
    pub idle_guests_per_machine: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        let r = RuntimeConfig::default();
        Self {
            call_deadline_ms: r.call_deadline.as_millis() as u64,
            memory_limit_bytes: r.memory_limit_bytes,
            workers: r.workers,
            max_context_bytes: r.max_context_bytes,
            idle_guests_per_machine: r.idle_guests_per_machine,
        }
    }
}

/// Bounds on the hot-instance registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryLimits {
    /// Instances kept in memory; least recently used idle ones are evicted above this.
    pub max_hot_instances: usize,
    /// Instances untouched for this long are evicted.
    pub idle_evict_ms: u64,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self {
            max_hot_instances: 100_000,
            idle_evict_ms: 10 * 60 * 1000,
        }
    }
}

/// Keepalive for `/rt` connections. State Backed clients ping every 5 minutes exactly, so the
/// server waits that long plus a grace before dropping a silent connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    pub ping_interval_ms: u64,
    pub ping_grace_ms: u64,
    /// How long one write to a client may stay blocked (the client stopped reading) before
    /// the connection is closed as a slow consumer (close code 4008).
    pub stall_timeout_ms: u64,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 5 * 60 * 1000,
            ping_grace_ms: 60 * 1000,
            stall_timeout_ms: 30 * 1000,
        }
    }
}

/// Values given as command-line flags; the last layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub store: Option<StoreKind>,
}

/// The environment variables [`Config::apply_env`] reads.
pub const ENV_VARS: &[&str] = &[
    "STATEWIRE_HOST",
    "STATEWIRE_PORT",
    "STATEWIRE_DATA_DIR",
    "STATEWIRE_STORE",
    "STATEWIRE_PUBLIC_URL",
    "STATEWIRE_CORS_ORIGINS",
    "STATEWIRE_CALL_DEADLINE_MS",
    "STATEWIRE_MEMORY_LIMIT_BYTES",
    "STATEWIRE_WORKERS",
    "STATEWIRE_MAX_CONTEXT_BYTES",
    "STATEWIRE_MAX_HOT_INSTANCES",
    "STATEWIRE_IDLE_EVICT_MS",
    "STATEWIRE_WS_PING_INTERVAL_MS",
    "STATEWIRE_WS_PING_GRACE_MS",
    "STATEWIRE_WS_STALL_TIMEOUT_MS",
    "STATEWIRE_SHUTDOWN_GRACE_MS",
    "STATEWIRE_EFFECTS_RETRY_INTERVAL_MS",
    "STATEWIRE_EFFECTS_MAX_ATTEMPTS",
    "STATEWIRE_EFFECTS_SETTLE_WINDOW_MS",
];

impl Config {
    /// Builds the configuration from all four layers. `file` is the `--config` flag; `env` is
    /// the process environment (passed in so it can be tested without touching globals).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let file_from_env = env
            .iter()
            .find(|(k, _)| k == "STATEWIRE_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let mut config = match file.map(Path::to_path_buf).or(file_from_env) {
            Some(path) => Config::from_file(&path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.apply_overrides(flags);
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Applies every known `STATEWIRE_*` variable in `env`, the `STATEWIRE_SCYLLA_*` ones
    /// included; unknown names are ignored.
    pub fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (name, value) in &env {
            self.apply_var(name, value)?;
        }
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        self.store.scylla.apply_env(lookup)?;
        Ok(())
    }

    /// Applies one variable of [`ENV_VARS`]; `Ok(false)` for any other name.
    fn apply_var(&mut self, var: &str, value: &str) -> Result<bool, ConfigError> {
        let value = value.to_owned();
        let bad = |reason: String| ConfigError::Env {
            var: var.to_owned(),
            value: value.clone(),
            reason,
        };
        match var {
            "STATEWIRE_HOST" => self.host = value.clone(),
            "STATEWIRE_PORT" => self.port = parse_num(&value).map_err(bad)?,
            "STATEWIRE_DATA_DIR" => self.data_dir = PathBuf::from(&value),
            "STATEWIRE_STORE" => self.store.kind = value.parse().map_err(bad)?,
            "STATEWIRE_PUBLIC_URL" => self.public_url = Some(value.clone()),
            "STATEWIRE_CORS_ORIGINS" => {
                self.cors.allowed_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "STATEWIRE_CALL_DEADLINE_MS" => {
                self.runtime.call_deadline_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_MEMORY_LIMIT_BYTES" => {
                self.runtime.memory_limit_bytes = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_WORKERS" => self.runtime.workers = parse_num(&value).map_err(bad)?,
            "STATEWIRE_MAX_CONTEXT_BYTES" => {
                self.runtime.max_context_bytes = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_MAX_HOT_INSTANCES" => {
                self.registry.max_hot_instances = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_IDLE_EVICT_MS" => {
                self.registry.idle_evict_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_WS_PING_INTERVAL_MS" => {
                self.websocket.ping_interval_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_WS_PING_GRACE_MS" => {
                self.websocket.ping_grace_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_WS_STALL_TIMEOUT_MS" => {
                self.websocket.stall_timeout_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_SHUTDOWN_GRACE_MS" => {
                self.shutdown_grace_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_EFFECTS_RETRY_INTERVAL_MS" => {
                self.effects.retry_interval_ms = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_EFFECTS_MAX_ATTEMPTS" => {
                self.effects.max_attempts = parse_num(&value).map_err(bad)?
            }
            "STATEWIRE_EFFECTS_SETTLE_WINDOW_MS" => {
                self.effects.settle_window_ms = parse_num(&value).map_err(bad)?
            }
            _ => return self.effects.fetch.apply_var(var, &value).map_err(bad),
        }
        Ok(true)
    }

    pub fn apply_overrides(&mut self, flags: &Overrides) {
        if let Some(host) = &flags.host {
            self.host = host.clone();
        }
        if let Some(port) = flags.port {
            self.port = port;
        }
        if let Some(dir) = &flags.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(kind) = flags.store {
            self.store.kind = kind;
        }
    }

    /// Refuses settings the server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.host.trim().is_empty() {
            return invalid("host must not be empty");
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid("public_url must start with http:// or https://");
            }
        }
        if self.cors.allowed_origins.is_empty() {
            return invalid("cors.allowed_origins must name at least one origin (or \"*\")");
        }
        if self.runtime.workers == 0 {
            return invalid("runtime.workers must be at least 1");
        }
        if self.runtime.call_deadline_ms == 0 {
            return invalid("runtime.call_deadline_ms must be positive");
        }
        if self.websocket.stall_timeout_ms == 0 {
            return invalid("websocket.stall_timeout_ms must be positive");
        }
        if self.effects.max_attempts == 0 {
            return invalid("effects.max_attempts must be at least 1");
        }
        if self.registry.max_hot_instances == 0 {
            return invalid("registry.max_hot_instances must be at least 1");
        }
        self.effects
            .fetch
            .validate()
            .map_err(ConfigError::Invalid)?;
        if self.store.kind == StoreKind::Scylla {
            self.store.scylla.validate()?;
        }
        Ok(())
    }

    /// The runtime's settings; compiled modules are cached under `data_dir/cache`.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: self.data_dir.join("cache"),
            call_deadline: Duration::from_millis(self.runtime.call_deadline_ms),
            memory_limit_bytes: self.runtime.memory_limit_bytes,
            max_context_bytes: self.runtime.max_context_bytes,
            workers: self.runtime.workers,
            idle_guests_per_machine: self.runtime.idle_guests_per_machine,
            ..RuntimeConfig::default()
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.trim().parse().map_err(|e: T::Err| e.to_string())
}

#[cfg(test)]
mod tests;
