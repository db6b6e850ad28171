//! `schema.cql` and the `schema` command: the file parses, documents every column, defines
//! every column the store's statements use; the command prints and applies it; and a store
//! refuses to start on a missing keyspace, table or column, or an unreachable cluster.

mod scylla_support;

use std::net::SocketAddr;
use std::process::Command;

use scylla_proxy::RequestOpcode;
use scylla_support::{
    config_for, parsed_schema, schema_statements, within, LwtShape, Schema, ScriptedNode, KEYSPACE,
};
use statewire::store::scylla::schema::{render, SchemaParams, SCHEMA_TEMPLATE};
use statewire::store::scylla::{statement_texts, ScyllaStore};
use statewire::store::StoreError;

#[test]
fn schema_cql_parses_into_the_expected_tables() {
    let schema = parsed_schema(KEYSPACE);
    assert_eq!(schema.keyspaces, [KEYSPACE]);
    let names: Vec<&str> = schema.tables.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bundle_chunks",
            "bundles",
            "instance_names",
            "instances",
            "machines",
            "meta",
            "signing_keys",
            "transitions",
            "uploads",
            "versions",
            "wakeups"
        ]
    );
    let instances = &schema.tables["instances"];
    assert_eq!(instances.partition_key, ["machine", "instance"]);
    assert!(instances.clustering.is_empty());
    let history = &schema.tables["transitions"];
    assert_eq!(
        history.partition_key,
        ["machine", "instance", "instance_created_at_ms", "bucket"]
    );
    assert_eq!(history.clustering, ["version"]);
    assert!(history.descending, "history reads newest first");
    let wakeups = &schema.tables["wakeups"];
    assert_eq!(wakeups.partition_key, ["shard", "minute_bucket"]);
    assert_eq!(wakeups.clustering, ["wake_at_ms", "machine", "instance"]);
    assert!(!wakeups.descending, "entries read earliest first");
    assert!(instances.column_type("effects").is_some());
}

#[test]
fn every_store_statement_uses_existing_columns_and_whole_partition_keys() {
    let schema = parsed_schema(KEYSPACE);
    for t in statement_texts(KEYSPACE) {
        if let Err(e) = schema.statement(&t.cql) {
            panic!("{}: {e}", t.name);
        }
    }
}

#[test]
fn the_parser_catches_what_a_server_would_refuse() {
    let schema = parsed_schema(KEYSPACE);
    for bad in [
        "SELECT nope FROM sw_wire.instances WHERE machine = ? AND instance = ?",
        "SELECT version FROM sw_wire.instances WHERE machine = ?",
        "UPDATE sw_wire.instances SET machine = ? WHERE machine = ? AND instance = ?",
        "UPDATE sw_wire.instances SET version = ? WHERE machine = ? AND instance = ? IF machine = ?",
        "INSERT INTO sw_wire.transitions (machine, instance, version) VALUES (?, ?, ?)",
        "SELECT version FROM other.instances WHERE machine = ? AND instance = ?",
    ] {
        assert!(schema.statement(bad).is_err(), "accepted: {bad}");
    }
    let broken_table =
        "CREATE TABLE IF NOT EXISTS sw_wire.t (a text, b sometype, PRIMARY KEY (a))".to_owned();
    let mut statements = schema_statements(KEYSPACE);
    statements.push(broken_table);
    assert!(Schema::parse(&statements).is_err());
}

#[test]
fn every_table_and_column_of_schema_cql_is_commented() {
    let mut in_table = false;
    let mut previous = "";
    for line in SCHEMA_TEMPLATE.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("CREATE TABLE") {
            assert!(previous.starts_with("--"), "no comment above: {trimmed}");
            in_table = true;
        } else if in_table && trimmed.starts_with("PRIMARY KEY") {
            in_table = false;
        } else if in_table && !trimmed.is_empty() && !trimmed.starts_with("--") {
            assert!(
                trimmed.contains("--"),
                "column without a comment: {trimmed}"
            );
        }
        previous = trimmed;
    }
}

fn statewire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_statewire"));
    cmd.env_clear();
    cmd
}

#[test]
fn schema_command_prints_the_schema_with_keyspace_and_replication() {
    let replication = "{'class':'NetworkTopologyStrategy','dc1':3}";
    let out = statewire()
        .args([
            "schema",
            "--keyspace",
            "prod_sw",
            "--replication",
            replication,
        ])
        .output()
        .expect("statewire runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = render(&SchemaParams {
        keyspace: "prod_sw".into(),
        replication: replication.into(),
        no_tablets: false,
    })
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert!(expected.contains("CREATE KEYSPACE IF NOT EXISTS prod_sw\n  WITH replication = {'class':'NetworkTopologyStrategy','dc1':3};"));
}

#[test]
fn schema_command_refuses_a_keyspace_that_is_not_an_identifier() {
    let out = statewire()
        .args(["schema", "--keyspace", "x; DROP KEYSPACE y"])
        .output()
        .expect("statewire runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyspace"));
}

#[tokio::test]
async fn schema_apply_sends_every_statement_and_the_store_then_connects() {
    within(async {
        let node = ScriptedNode::start(Schema::default(), LwtShape::Cassandra).await;
        let addr = node.addr.to_string();
        let out = tokio::task::spawn_blocking(move || {
            statewire()
                .args([
                    "schema",
                    "--apply",
                    "--keyspace",
                    KEYSPACE,
                    "--scylla-nodes",
                    &addr,
                ])
                .output()
                .expect("statewire runs")
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let expected = schema_statements(KEYSPACE);
        assert!(
            stderr.contains(&format!("{} statements", expected.len())),
            "{stderr}"
        );
        let sent: Vec<String> = node
            .seen()
            .into_iter()
            .filter(|s| s.opcode == RequestOpcode::Query && s.cql.starts_with("CREATE"))
            .map(|s| s.cql)
            .collect();
        assert_eq!(sent, expected, "every statement, in order, once");

        // The node now has the tables, so the schema check at connect passes.
        let mut config = config_for(node.addr);
        config.verify_schema = true;
        ScyllaStore::connect(&config).await.expect("store connects");
        node.stop().await;
    })
    .await;
}

async fn connect_error(schema: Schema) -> (StoreError, ScriptedNode) {
    let node = ScriptedNode::start(schema, LwtShape::Cassandra).await;
    let mut config = config_for(node.addr);
    config.verify_schema = true;
    let err = match ScyllaStore::connect(&config).await {
        Ok(_) => panic!("connect succeeded"),
        Err(e) => e,
    };
    (err, node)
}

#[tokio::test]
async fn connect_names_missing_tables_and_columns() {
    within(async {
        let statements: Vec<String> = schema_statements(KEYSPACE)
            .into_iter()
            .filter(|s| !s.contains(".transitions ("))
            .map(|s| s.replace(" write_id uuid,", ""))
            .collect();
        let (err, node) = connect_error(Schema::parse(&statements).unwrap()).await;
        let message = err.to_string();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(message.contains("missing tables: transitions"), "{message}");
        assert!(message.contains("instances.write_id"), "{message}");
        assert!(
            message.contains("statewire schema --keyspace sw_wire --apply"),
            "{message}"
        );
        let prepared_store_statements = node
            .seen()
            .iter()
            .filter(|s| s.opcode == RequestOpcode::Prepare && s.cql.contains("sw_wire."))
            .count();
        assert_eq!(
            prepared_store_statements, 0,
            "nothing prepared on a bad schema"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn connect_reports_a_missing_keyspace() {
    within(async {
        let (err, node) = connect_error(Schema::default()).await;
        assert!(
            err.to_string().contains("keyspace sw_wire does not exist"),
            "{err}"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn connect_reports_an_unreachable_cluster_by_address() {
    within(async {
        // A loopback address no test node listens on.
        let addr = SocketAddr::new(scylla_support::node::fresh_loopback_ip(), 9042);
        let err = match ScyllaStore::connect(&config_for(addr)).await {
            Ok(_) => panic!("connected to nothing"),
            Err(e) => e,
        };
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    })
    .await;
}
