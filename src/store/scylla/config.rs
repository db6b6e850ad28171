//! How to reach a ScyllaDB cluster: contact points, keyspace, credentials, TLS, consistency.
//!
//! Read from a config file section (serde), then overridden by `STATEWIRE_SCYLLA_*` variables
//! (see [`ScyllaConfig::apply_env`]), then by command-line flags.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};
use serde::{Deserialize, Serialize};

/// Port of the CQL native protocol, used for contact points given without one.
pub const DEFAULT_CQL_PORT: u16 = 9042;

/// Why a ScyllaDB setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScyllaConfigError {
    #[error("{var}={value:?} is invalid: {reason}")]
    InvalidEnv {
        var: String,
        value: String,
        reason: String,
    },
    #[error(
        "keyspace {0:?} is invalid: use 1 to 48 lowercase letters, digits or underscores, \
         starting with a letter"
    )]
    InvalidKeyspace(String),
    #[error("no ScyllaDB contact points: set STATEWIRE_SCYLLA_NODES (host[:port],...)")]
    NoNodes,
    #[error("{0} must be greater than 0")]
    ZeroTimeout(&'static str),
}

/// Consistency of ordinary reads and writes (and of the commit phase of lightweight
/// transactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyLevel {
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

/// Consistency of the Paxos phase of lightweight transactions and of linearizable reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SerialConsistencyLevel {
    /// Linearizable within the local datacenter; the default.
    LocalSerial,
    /// Linearizable across all datacenters; every transaction pays a cross-DC round trip.
    Serial,
}

impl From<ConsistencyLevel> for Consistency {
    fn from(c: ConsistencyLevel) -> Self {
        match c {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::Two => Consistency::Two,
            ConsistencyLevel::Three => Consistency::Three,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::All => Consistency::All,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
        }
    }
}

impl From<SerialConsistencyLevel> for SerialConsistency {
    fn from(c: SerialConsistencyLevel) -> Self {
        match c {
            SerialConsistencyLevel::LocalSerial => SerialConsistency::LocalSerial,
            SerialConsistencyLevel::Serial => SerialConsistency::Serial,
        }
    }
}

impl SerialConsistencyLevel {
    /// The same level used as the consistency of a read, which makes the read linearizable.
    pub fn as_read_consistency(self) -> Consistency {
        match self {
            SerialConsistencyLevel::LocalSerial => Consistency::LocalSerial,
            SerialConsistencyLevel::Serial => Consistency::Serial,
        }
    }
}

/// Settings of the ScyllaDB store. `Debug` never prints the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaConfig {
    /// Contact points, `host` or `host:port` (port 9042 when omitted). The driver discovers
    /// the rest of the cluster from them.
    pub nodes: Vec<String>,
    /// Keyspace holding the tables of `schema.cql`.
    pub keyspace: String,
    /// Datacenter whose nodes are used; the others only if it is down. `None` treats all
    /// nodes alike, which is only sensible for a single-datacenter cluster.
    pub local_datacenter: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Encrypt connections. Needs a build with the `scylla-tls` feature.
    pub tls: bool,
    /// PEM file of the certificate authority that signed the nodes' certificates; the system
    /// trust store when `None`.
    pub tls_ca_file: Option<PathBuf>,
    pub consistency: ConsistencyLevel,
    pub serial_consistency: SerialConsistencyLevel,
    /// Client-side limit per request. Keep it above the cluster's own write and CAS timeouts
    /// so the cluster reports a timeout (which the store can settle) before the client does.
    pub request_timeout_ms: u64,
    /// Limit for opening each connection.
    pub connect_timeout_ms: u64,
    /// Check at connect time that the keyspace and every table and column the store uses
    /// exist. Only scripted test nodes, which cannot answer schema queries, turn it off.
    pub verify_schema: bool,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            keyspace: "statewire".to_owned(),
            local_datacenter: None,
            username: None,
            password: None,
            tls: false,
            tls_ca_file: None,
            consistency: ConsistencyLevel::LocalQuorum,
            serial_consistency: SerialConsistencyLevel::LocalSerial,
            request_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            verify_schema: true,
        }
    }
}

impl fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("local_datacenter", &self.local_datacenter)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("consistency", &self.consistency)
            .field("serial_consistency", &self.serial_consistency)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("verify_schema", &self.verify_schema)
            .finish()
    }
}

/// Prefix of every environment variable read by [`ScyllaConfig::apply_env`].
pub const ENV_PREFIX: &str = "STATEWIRE_SCYLLA_";

impl ScyllaConfig {
    /// Defaults overridden by the process environment.
    pub fn from_env() -> Result<Self, ScyllaConfigError> {
        let mut config = Self::default();
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Overrides settings from `STATEWIRE_SCYLLA_*` variables found by `lookup`:
    /// `NODES` (comma-separated), `KEYSPACE`, `LOCAL_DC`, `USERNAME`, `PASSWORD`,
    /// `TLS` (true/false), `TLS_CA_FILE`, `CONSISTENCY` (e.g. `local_quorum`),
    /// `SERIAL_CONSISTENCY` (`local_serial` or `serial`), `REQUEST_TIMEOUT_MS`,
    /// `CONNECT_TIMEOUT_MS`, `VERIFY_SCHEMA` (true/false). Empty values are ignored.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ScyllaConfigError> {
        let get = |suffix: &str| {
            let var = format!("{ENV_PREFIX}{suffix}");
            lookup(&var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v))
        };
        if let Some((_, v)) = get("NODES") {
            self.nodes = split_nodes(&v);
        }
        if let Some((_, v)) = get("KEYSPACE") {
            self.keyspace = v.trim().to_owned();
        }
        if let Some((_, v)) = get("LOCAL_DC") {
            self.local_datacenter = Some(v.trim().to_owned());
        }
        if let Some((_, v)) = get("USERNAME") {
            self.username = Some(v);
        }
        if let Some((_, v)) = get("PASSWORD") {
            self.password = Some(v);
        }
        if let Some((var, v)) = get("TLS") {
            self.tls = parse_bool(&var, &v)?;
        }
        if let Some((_, v)) = get("TLS_CA_FILE") {
            self.tls_ca_file = Some(PathBuf::from(v.trim()));
        }
        if let Some((var, v)) = get("CONSISTENCY") {
            self.consistency = parse_enum(&var, &v)?;
        }
        if let Some((var, v)) = get("SERIAL_CONSISTENCY") {
            self.serial_consistency = parse_enum(&var, &v)?;
        }
        if let Some((var, v)) = get("REQUEST_TIMEOUT_MS") {
            self.request_timeout_ms = parse_u64(&var, &v)?;
        }
        if let Some((var, v)) = get("CONNECT_TIMEOUT_MS") {
            self.connect_timeout_ms = parse_u64(&var, &v)?;
        }
        if let Some((var, v)) = get("VERIFY_SCHEMA") {
            self.verify_schema = parse_bool(&var, &v)?;
        }
        Ok(())
    }

    /// Checks what can be checked without a cluster.
    pub fn validate(&self) -> Result<(), ScyllaConfigError> {
        if self.nodes.is_empty() {
            return Err(ScyllaConfigError::NoNodes);
        }
        validate_keyspace(&self.keyspace)?;
        if self.request_timeout_ms == 0 {
            return Err(ScyllaConfigError::ZeroTimeout("request_timeout_ms"));
        }
        if self.connect_timeout_ms == 0 {
            return Err(ScyllaConfigError::ZeroTimeout("connect_timeout_ms"));
        }
        Ok(())
    }

    /// Contact points with the default port added where none was given.
    pub fn contact_points(&self) -> Vec<String> {
        self.nodes.iter().map(|n| with_default_port(n)).collect()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// Keyspace names are spliced into statement text, so only plain lowercase identifiers pass.
pub fn validate_keyspace(name: &str) -> Result<(), ScyllaConfigError> {
    let mut bytes = name.bytes();
    let ok = (1..=48).contains(&name.len())
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ScyllaConfigError::InvalidKeyspace(name.to_owned()))
    }
}

fn split_nodes(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `10.0.0.1` → `10.0.0.1:9042`, `::1` → `[::1]:9042`, `db.local` → `db.local:9042`; a
/// contact point that already names a port is kept as given.
fn with_default_port(node: &str) -> String {
    let node = node.trim();
    if node.parse::<SocketAddr>().is_ok() {
        return node.to_owned();
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return SocketAddr::new(ip, DEFAULT_CQL_PORT).to_string();
    }
    let has_port = node
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.contains(':') && port.parse::<u16>().is_ok());
    if has_port {
        node.to_owned()
    } else {
        format!("{node}:{DEFAULT_CQL_PORT}")
    }
}

fn invalid(var: &str, value: &str, reason: impl Into<String>) -> ScyllaConfigError {
    ScyllaConfigError::InvalidEnv {
        var: var.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parse_bool(var: &str, value: &str) -> Result<bool, ScyllaConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, value, "expected true or false")),
    }
}

fn parse_u64(var: &str, value: &str) -> Result<u64, ScyllaConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(var, value, "expected a whole number of milliseconds"))
}

/// Parses a snake_case level name through the serde names of `T`.
fn parse_enum<T: serde::de::DeserializeOwned>(
    var: &str,
    value: &str,
) -> Result<T, ScyllaConfigError> {
    let name = value.trim().to_ascii_lowercase();
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| invalid(var, value, "unknown consistency level"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_are_local_quorum_and_local_serial() {
        let c = ScyllaConfig::default();
        assert_eq!(c.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(c.serial_consistency, SerialConsistencyLevel::LocalSerial);
        assert_eq!(c.keyspace, "statewire");
        assert!(c.verify_schema);
    }

    #[test]
    fn env_overrides_every_setting() {
        let mut c = ScyllaConfig::default();
        c.apply_env(env(&[
            ("NODES", "10.0.0.1, db2:19042,,::1"),
            ("KEYSPACE", "sw_prod"),
            ("LOCAL_DC", "eu-west"),
            ("USERNAME", "sw"),
            ("PASSWORD", "hunter2"),
            ("TLS", "true"),
            ("TLS_CA_FILE", "/etc/ca.pem"),
            ("CONSISTENCY", "QUORUM"),
            ("SERIAL_CONSISTENCY", "serial"),
            ("REQUEST_TIMEOUT_MS", "2500"),
            ("CONNECT_TIMEOUT_MS", "700"),
            ("VERIFY_SCHEMA", "off"),
        ]))
        .unwrap();
        assert_eq!(c.nodes, ["10.0.0.1", "db2:19042", "::1"]);
        assert_eq!(
            c.contact_points(),
            ["10.0.0.1:9042", "db2:19042", "[::1]:9042"]
        );
        assert_eq!(c.keyspace, "sw_prod");
        assert_eq!(c.local_datacenter.as_deref(), Some("eu-west"));
        assert_eq!(c.username.as_deref(), Some("sw"));
        assert_eq!(c.password.as_deref(), Some("hunter2"));
        assert!(c.tls);
        assert_eq!(c.tls_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.consistency, ConsistencyLevel::Quorum);
        assert_eq!(c.serial_consistency, SerialConsistencyLevel::Serial);
        assert_eq!(c.request_timeout_ms, 2500);
        assert_eq!(c.connect_timeout_ms, 700);
        assert!(!c.verify_schema);
        c.validate().unwrap();
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let mut c = ScyllaConfig::default();
        let err = c.apply_env(env(&[("CONSISTENCY", "mostly")])).unwrap_err();
        assert!(err.to_string().contains("STATEWIRE_SCYLLA_CONSISTENCY"));
        let err = c.apply_env(env(&[("TLS", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("STATEWIRE_SCYLLA_TLS"));
    }

    #[test]
    fn keyspace_names_that_could_inject_cql_are_refused() {
        for bad in ["", "1ks", "ks;drop", "Ks", "ks.other", &"k".repeat(49)] {
            assert!(validate_keyspace(bad).is_err(), "{bad:?} accepted");
        }
        validate_keyspace("statewire_2").unwrap();
    }

    #[test]
    fn validation_requires_contact_points() {
        assert_eq!(
            ScyllaConfig::default().validate(),
            Err(ScyllaConfigError::NoNodes)
        );
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = ScyllaConfig {
            password: Some("hunter2".into()),
            ..ScyllaConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn config_file_section_uses_snake_case_levels() {
        let c: ScyllaConfig = toml::from_str(
            "nodes = ['a']\nconsistency = 'each_quorum'\nserial_consistency = 'local_serial'",
        )
        .unwrap();
        assert_eq!(c.consistency, ConsistencyLevel::EachQuorum);
        assert_eq!(c.keyspace, "statewire");
    }
}
