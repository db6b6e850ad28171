//! Shared pieces of the ScyllaDB store tests: the CQL parser, wire encoding, the table model
//! and the scripted node, plus records to commit.

#![allow(dead_code, unused_imports)]

pub mod cql;
pub mod model;
pub mod node;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::scylla::schema::{render, split_statements, SchemaParams};
use statewire::store::scylla::ScyllaConfig;
use statewire::store::{Commit, Expect, InstanceRecord, InstanceStatus, TransitionRecord};

pub use cql::Schema;
pub use model::{LwtShape, Reply};
pub use node::ScriptedNode;
pub use wire::Value;

/// Keyspace used by the scripted-node tests.
pub const KEYSPACE: &str = "sw_wire";

/// Every async test body runs under this limit.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

/// The statements of `schema.cql` rendered for `keyspace`.
pub fn schema_statements(keyspace: &str) -> Vec<String> {
    let params = SchemaParams {
        keyspace: keyspace.to_owned(),
        ..SchemaParams::default()
    };
    split_statements(&render(&params).expect("schema renders"))
}

/// The parsed schema of `keyspace`, as the scripted node's tables.
pub fn parsed_schema(keyspace: &str) -> Schema {
    Schema::parse(&schema_statements(keyspace)).expect("schema.cql parses")
}

/// Store settings for a scripted node: one contact point, short timeouts.
pub fn config_for(addr: SocketAddr) -> ScyllaConfig {
    ScyllaConfig {
        nodes: vec![addr.to_string()],
        keyspace: KEYSPACE.to_owned(),
        request_timeout_ms: 5_000,
        connect_timeout_ms: 2_000,
        ..ScyllaConfig::default()
    }
}

pub fn key(machine: &str, instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse(machine).unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

/// The record an instance has at `version`, written by `write_id`.
pub fn record(version: u64, write_id: uuid::Uuid) -> InstanceRecord {
    InstanceRecord {
        machine_version: MachineVersionId::parse("ver_wire").unwrap(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: 1_000 + version as i64,
        snapshot: format!("{{\"v\":{version}}}"),
        state: json!({"on": version.is_multiple_of(2)}),
        context: json!({"public": {"n": version}}),
        tags: vec!["t".to_owned()],
        done: false,
        write_id,
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000 + version as i64,
        effects: Default::default(),
    }
}

/// A commit from `expect` to the next version, with its transition.
pub fn commit(key: &InstanceKey, expect: Expect) -> Commit {
    let version = match expect {
        Expect::Absent => 1,
        Expect::Version(n) => n + 1,
    };
    Commit {
        key: key.clone(),
        expect,
        next: record(version, uuid::Uuid::new_v4()),
        transition: Some(TransitionRecord {
            version,
            created_at_ms: 1_700_000_000_000 + version as i64,
            event: json!({"type": "toggle"}),
            state: json!({"on": version.is_multiple_of(2)}),
        }),
    }
}
