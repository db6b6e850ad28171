//! How the store lays data out in the tables: history in buckets of 1024 versions, bundles in
//! 512 KiB chunks written before their manifest, all checked on the wire.

mod scylla_support;

use std::collections::BTreeSet;

use scylla_proxy::RequestOpcode;
use scylla_support::{
    commit, config_for, key, parsed_schema, record, within, LwtShape, Reply, ScriptedNode, Value,
    KEYSPACE,
};
use statewire::ids::InstanceKey;
use statewire::store::scylla::{
    statement_texts, ScyllaStore, BUNDLE_CHUNK_BYTES, HISTORY_BUCKET_VERSIONS,
};
use statewire::store::{CasOutcome, Expect, PageRequest, Store, StoreError};

async fn start() -> (ScriptedNode, ScyllaStore) {
    let node = ScriptedNode::start(parsed_schema(KEYSPACE), LwtShape::Cassandra).await;
    let store = ScyllaStore::connect(&config_for(node.addr)).await.unwrap();
    (node, store)
}

/// Runs the store's statement `name` directly on the node's model, bypassing the wire (each
/// request through the scripted node costs tens of milliseconds, so long histories are
/// seeded this way).
fn seed(node: &ScriptedNode, name: &str, values: Vec<Value>) {
    let cql = statement_texts(KEYSPACE)
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
        .cql;
    let statement = node.state.model.schema.lock().statement(&cql).unwrap();
    node.state.model.execute(&statement, &values);
}

/// Seeds an instance at `version` with a history row for every version up to it.
fn seed_instance(node: &ScriptedNode, k: &InstanceKey, version: u64) {
    let text = |s: &str| Value::Text(s.to_owned());
    let r = record(version, uuid::Uuid::new_v4());
    seed(
        node,
        "instance_insert",
        vec![
            text(k.machine.as_str()),
            text(k.instance.as_str()),
            Value::BigInt(version as i64),
            text(r.machine_version.as_str()),
            Value::Null,
            text("running"),
            Value::BigInt(r.ts_ms),
            text(&r.snapshot),
            text(&r.state.to_string()),
            text(&r.context.to_string()),
            Value::List(vec![]),
            Value::Boolean(false),
            Value::Uuid(r.write_id),
            Value::BigInt(r.created_at_ms),
            Value::BigInt(r.updated_at_ms),
            Value::Null,
        ],
    );
    for v in 1..=version {
        seed(
            node,
            "transition_insert",
            vec![
                text(k.machine.as_str()),
                text(k.instance.as_str()),
                Value::BigInt(r.created_at_ms),
                Value::BigInt(((v - 1) / HISTORY_BUCKET_VERSIONS) as i64),
                Value::BigInt(v as i64),
                Value::Uuid(uuid::Uuid::new_v4()),
                text(&format!("{{\"n\":{v}}}")),
                text("\"s\""),
                Value::BigInt(v as i64),
            ],
        );
    }
}

#[tokio::test]
async fn history_appends_cross_into_the_next_bucket_at_1024_versions() {
    within(async {
        let (node, store) = start().await;
        let k = key("busy", "crossing");
        seed_instance(&node, &k, HISTORY_BUCKET_VERSIONS - 1);
        for v in HISTORY_BUCKET_VERSIONS - 1..HISTORY_BUCKET_VERSIONS + 1 {
            let outcome = store.commit(commit(&k, Expect::Version(v))).await.unwrap();
            assert_eq!(outcome, CasOutcome::Applied { version: v + 1 });
        }
        let appended: Vec<(i64, i64)> = node
            .executions("INSERT INTO sw_wire.transitions")
            .iter()
            .map(|s| {
                (
                    s.values[3].as_bigint().unwrap(),
                    s.values[4].as_bigint().unwrap(),
                )
            })
            .collect();
        assert_eq!(appended, [(0, 1024), (1, 1025)]);
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_long_history_pages_newest_first_across_buckets_and_deletes_whole() {
    within(async {
        let (node, store) = start().await;
        let k = key("busy", "counter");
        let last = 2 * HISTORY_BUCKET_VERSIONS + 80;
        seed_instance(&node, &k, last);
        let mut versions = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_transitions(&k, &PageRequest { cursor, limit: 300 })
                .await
                .unwrap();
            versions.extend(page.items.iter().map(|t| t.version));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<u64> = (1..=last).rev().collect();
        assert_eq!(versions, expected);

        assert!(store.delete_instance(&k).await.unwrap());
        let deleted_buckets: BTreeSet<i64> = node
            .executions("DELETE FROM sw_wire.transitions")
            .iter()
            .map(|s| s.values[3].as_bigint().unwrap())
            .collect();
        assert_eq!(deleted_buckets, BTreeSet::from([0, 1, 2]));
        assert_eq!(node.state.model.count("transitions"), 0);
        assert_eq!(node.state.model.count("instances"), 0);
        node.stop().await;
    })
    .await;
}

fn code(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn a_bundle_is_written_in_chunks_before_its_manifest_and_read_back_whole() {
    within(async {
        let (node, store) = start().await;
        let bytes = code(2 * BUNDLE_CHUNK_BYTES + 151_424);
        store.put_bundle("h1", &bytes).await.unwrap();
        let writes: Vec<_> = node
            .seen()
            .into_iter()
            .filter(|s| s.opcode == RequestOpcode::Execute && s.cql.starts_with("INSERT"))
            .collect();
        let sizes: Vec<usize> = writes
            .iter()
            .filter(|s| s.cql.starts_with("INSERT INTO sw_wire.bundle_chunks"))
            .map(|s| match &s.values[2] {
                Value::Blob(b) => b.len(),
                other => panic!("chunk data is {other:?}"),
            })
            .collect();
        assert_eq!(sizes, [BUNDLE_CHUNK_BYTES, BUNDLE_CHUNK_BYTES, 151_424]);
        let manifest = writes.last().unwrap();
        assert!(manifest.cql.starts_with("INSERT INTO sw_wire.bundles "));
        assert_eq!(manifest.values[1], Value::Int(3));
        assert_eq!(manifest.values[2], Value::BigInt(bytes.len() as i64));

        assert_eq!(store.get_bundle("h1").await.unwrap(), Some(bytes.clone()));
        node.clear_seen();
        store.put_bundle("h1", &bytes).await.unwrap();
        assert!(
            node.executions("INSERT").is_empty(),
            "a complete bundle is not written again"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_bundle_with_a_missing_chunk_is_corrupt() {
    within(async {
        let (node, store) = start().await;
        store
            .put_bundle("h2", &code(BUNDLE_CHUNK_BYTES + 10))
            .await
            .unwrap();
        node.intercept(|st, values, model| {
            if !st.cql.starts_with("SELECT chunk, data FROM") {
                return None;
            }
            match model.execute(st, values) {
                Reply::Rows {
                    keyspace,
                    table,
                    columns,
                    mut rows,
                } => {
                    rows.remove(0);
                    Some(Reply::Rows {
                        keyspace,
                        table,
                        columns,
                        rows,
                    })
                }
                other => Some(other),
            }
        });
        let got = store.get_bundle("h2").await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        node.stop().await;
    })
    .await;
}
