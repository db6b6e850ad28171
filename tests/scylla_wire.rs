//! The ScyllaDB store against a scripted CQL node: the statements it prepares, the
//! consistency levels it sends, and how it reads `[applied]` replies and settles commits whose
//! reply was lost. The node answers from an in-memory table model; interceptors script
//! timeouts and stale replies.

mod scylla_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use scylla_cql::frame::response::error::{DbError, WriteType};
use scylla_cql::frame::types::{Consistency, SerialConsistency};
use scylla_proxy::RequestOpcode;
use scylla_support::wire::CqlType;
use scylla_support::{
    commit, config_for, key, parsed_schema, within, LwtShape, Reply, ScriptedNode, Value, KEYSPACE,
};
use statewire::store::scylla::{
    statement_texts, ConsistencyLevel, ScyllaConfig, ScyllaStore, SerialConsistencyLevel,
};
use statewire::store::{CasOutcome, Expect, Store, StoreError};

const INSERT_INSTANCE: &str = "INSERT INTO sw_wire.instances (machine, instance, version, \
    machine_version, desired_machine_version, status, ts_ms, snapshot, state, context, tags, \
    done, write_id, created_at_ms, updated_at_ms, effects) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const UPDATE_INSTANCE: &str = "UPDATE sw_wire.instances SET version = ?, machine_version = ?, \
    desired_machine_version = ?, status = ?, ts_ms = ?, snapshot = ?, state = ?, context = ?, \
    tags = ?, done = ?, write_id = ?, updated_at_ms = ?, effects = ? \
    WHERE machine = ? AND instance = ? IF version = ?";
const SELECT_INSTANCE: &str = "SELECT machine_version, desired_machine_version, status, \
    version, ts_ms, snapshot, state, context, tags, done, write_id, created_at_ms, \
    updated_at_ms, effects FROM sw_wire.instances WHERE machine = ? AND instance = ?";
const INSERT_TRANSITION: &str = "INSERT INTO sw_wire.transitions";

async fn start(shape: LwtShape) -> ScriptedNode {
    ScriptedNode::start(parsed_schema(KEYSPACE), shape).await
}

async fn connect(node: &ScriptedNode) -> ScyllaStore {
    connect_with(node, |_| {}).await
}

async fn connect_with(node: &ScriptedNode, tweak: impl FnOnce(&mut ScyllaConfig)) -> ScyllaStore {
    let mut config = config_for(node.addr);
    tweak(&mut config);
    ScyllaStore::connect(&config).await.expect("store connects")
}

fn cas_timeout() -> DbError {
    DbError::WriteTimeout {
        consistency: Consistency::LocalSerial,
        received: 1,
        required: 2,
        write_type: WriteType::Cas,
    }
}

/// Answers the first EXECUTE whose text starts with `prefix` with `answer(values, model)`.
fn once(
    node: &ScriptedNode,
    prefix: &'static str,
    answer: impl Fn(&scylla_support::cql::Statement, &[Value], &scylla_support::model::Model) -> Reply
        + Send
        + Sync
        + 'static,
) {
    let fired = AtomicUsize::new(0);
    node.intercept(move |st, values, model| {
        (st.cql.starts_with(prefix) && fired.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| answer(st, values, model))
    });
}

/// Position of the `write_id` bind marker in the instance UPDATE.
const UPDATE_WRITE_ID_AT: usize = 10;

#[tokio::test]
async fn connect_prepares_each_store_statement_and_nothing_else() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let _store = connect(&node).await;
        // The driver prepares its own reads of system tables too; those name no statewire
        // keyspace.
        let prepared: std::collections::BTreeSet<String> = node
            .seen()
            .into_iter()
            .filter(|s| s.opcode == RequestOpcode::Prepare && !s.cql.contains(" system"))
            .map(|s| s.cql)
            .collect();
        let expected: std::collections::BTreeSet<String> = statement_texts(KEYSPACE)
            .into_iter()
            .map(|t| t.cql)
            .collect();
        assert_eq!(prepared, expected);
        assert!(prepared.contains(INSERT_INSTANCE));
        assert!(prepared.contains(UPDATE_INSTANCE));
        assert!(prepared.contains(SELECT_INSTANCE));
        assert!(node
            .seen()
            .iter()
            .all(|s| s.opcode != RequestOpcode::Execute));
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn create_is_one_insert_if_not_exists_at_local_quorum_and_local_serial() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("door", "front");
        let c = commit(&k, Expect::Absent);
        let write_id = c.next.write_id;
        let expected_record = c.next.clone();
        assert_eq!(
            store.commit(c).await.unwrap(),
            CasOutcome::Applied { version: 1 }
        );
        let inserts = node.executions(INSERT_INSTANCE);
        assert_eq!(inserts.len(), 1, "one transaction, no retry");
        assert_eq!(inserts[0].consistency, Some(Consistency::LocalQuorum));
        assert_eq!(
            inserts[0].serial_consistency,
            Some(SerialConsistency::LocalSerial)
        );
        assert_eq!(inserts[0].values[2], Value::BigInt(1));
        assert_eq!(inserts[0].values[12], Value::Uuid(write_id));

        // The name index is written before the instance, the history after it.
        let order: Vec<String> = node
            .seen()
            .into_iter()
            .filter(|s| s.opcode == RequestOpcode::Execute)
            .map(|s| s.cql.split(" (").next().unwrap().to_owned())
            .collect();
        assert_eq!(
            order,
            [
                "INSERT INTO sw_wire.instance_names",
                "INSERT INTO sw_wire.instances",
                "INSERT INTO sw_wire.transitions"
            ]
        );
        let history = node.executions(INSERT_TRANSITION);
        assert_eq!(history[0].values[4], Value::BigInt(1));
        assert_eq!(history[0].values[5], Value::Uuid(write_id));

        assert_eq!(
            store.load_instance(&k).await.unwrap(),
            Some(expected_record)
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_event_is_one_update_if_version_with_the_expected_version_bound() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("door", "back");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        let c = commit(&k, Expect::Version(1));
        let next = c.next.clone();
        assert_eq!(
            store.commit(c).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
        let updates = node.executions(UPDATE_INSTANCE);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].values[0], Value::BigInt(2), "new version");
        assert_eq!(updates[0].values[15], Value::BigInt(1), "IF version = 1");
        assert_eq!(updates[0].consistency, Some(Consistency::LocalQuorum));
        assert_eq!(
            updates[0].serial_consistency,
            Some(SerialConsistency::LocalSerial)
        );
        assert_eq!(store.load_instance(&k).await.unwrap(), Some(next));
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_not_applied_reply_is_a_conflict_carrying_the_current_version() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("door", "side");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        once(&node, UPDATE_INSTANCE, |_, _, _| Reply::Rows {
            keyspace: KEYSPACE.into(),
            table: "instances".into(),
            columns: vec![
                ("[applied]".into(), CqlType::Boolean),
                ("version".into(), CqlType::BigInt),
            ],
            rows: vec![vec![Value::Boolean(false), Value::BigInt(7)]],
        });
        node.clear_seen();
        assert_eq!(
            store.commit(commit(&k, Expect::Version(1))).await.unwrap(),
            CasOutcome::Conflict { current: Some(7) }
        );
        assert_eq!(node.executions(UPDATE_INSTANCE).len(), 1);
        assert!(
            node.executions(INSERT_TRANSITION).is_empty(),
            "no history for a write that did not apply"
        );
        node.stop().await;
    })
    .await;
}

async fn races_resolve_by_version(shape: LwtShape) {
    let node = start(shape).await;
    let store = connect(&node).await;
    let k = key("race", "one");
    assert_eq!(
        store.commit(commit(&k, Expect::Absent)).await.unwrap(),
        CasOutcome::Applied { version: 1 }
    );
    assert_eq!(
        store.commit(commit(&k, Expect::Absent)).await.unwrap(),
        CasOutcome::Conflict { current: Some(1) }
    );
    assert_eq!(
        store.commit(commit(&k, Expect::Version(1))).await.unwrap(),
        CasOutcome::Applied { version: 2 }
    );
    assert_eq!(
        store.commit(commit(&k, Expect::Version(1))).await.unwrap(),
        CasOutcome::Conflict { current: Some(2) }
    );
    assert_eq!(
        store.commit(commit(&k, Expect::Version(9))).await.unwrap(),
        CasOutcome::Conflict { current: Some(2) }
    );
    assert_eq!(
        store
            .commit(commit(&key("race", "missing"), Expect::Version(1)))
            .await
            .unwrap(),
        CasOutcome::Conflict { current: None }
    );
    node.stop().await;
}

#[tokio::test]
async fn cassandra_shaped_replies_resolve_races_by_version() {
    within(races_resolve_by_version(LwtShape::Cassandra)).await;
}

#[tokio::test]
async fn scylla_shaped_replies_resolve_races_by_version() {
    within(races_resolve_by_version(LwtShape::Scylla)).await;
}

#[tokio::test]
async fn cas_timeout_whose_write_landed_settles_as_applied() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("timeout", "landed");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        once(&node, UPDATE_INSTANCE, |st, values, model| {
            model.execute(st, values);
            Reply::Error(cas_timeout())
        });
        node.clear_seen();
        let c = commit(&k, Expect::Version(1));
        let write_id = c.next.write_id;
        assert_eq!(
            store.commit(c).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
        assert_eq!(
            node.executions(UPDATE_INSTANCE).len(),
            1,
            "the driver does not retry a transaction and the store need not repeat it"
        );
        let settling: Vec<_> = node
            .executions(SELECT_INSTANCE)
            .into_iter()
            .filter(|s| s.consistency == Some(Consistency::LocalSerial))
            .collect();
        assert_eq!(settling.len(), 1, "one serial read settles it");
        let history = node.executions(INSERT_TRANSITION);
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].values[5], Value::Uuid(write_id));
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cas_timeout_while_another_write_landed_settles_as_conflict() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("timeout", "lost");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        let other = uuid::Uuid::new_v4();
        once(&node, UPDATE_INSTANCE, move |st, values, model| {
            let mut theirs = values.to_vec();
            theirs[UPDATE_WRITE_ID_AT] = Value::Uuid(other);
            model.execute(st, &theirs);
            Reply::Error(cas_timeout())
        });
        node.clear_seen();
        assert_eq!(
            store.commit(commit(&k, Expect::Version(1))).await.unwrap(),
            CasOutcome::Conflict { current: Some(2) }
        );
        assert_eq!(node.executions(UPDATE_INSTANCE).len(), 1);
        assert!(node.executions(INSERT_TRANSITION).is_empty());
        let stored = store.load_instance_linearizable(&k).await.unwrap().unwrap();
        assert_eq!(stored.write_id, other);
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cas_timeout_with_nothing_landed_repeats_the_same_write_once() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("timeout", "nothing");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        once(
            &node,
            UPDATE_INSTANCE,
            |_, _, _| Reply::Error(cas_timeout()),
        );
        node.clear_seen();
        assert_eq!(
            store.commit(commit(&k, Expect::Version(1))).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
        let updates = node.executions(UPDATE_INSTANCE);
        assert_eq!(updates.len(), 2);
        assert_eq!(
            updates[0].values, updates[1].values,
            "same write id, same values"
        );
        assert_eq!(node.executions(INSERT_TRANSITION).len(), 1);
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failed_settling_read_leaves_the_outcome_unknown() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("timeout", "unknown");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        once(
            &node,
            UPDATE_INSTANCE,
            |_, _, _| Reply::Error(cas_timeout()),
        );
        node.intercept(|st, _, _| {
            (st.cql == SELECT_INSTANCE).then(|| {
                Reply::Error(DbError::ReadTimeout {
                    consistency: Consistency::LocalSerial,
                    received: 1,
                    required: 2,
                    data_present: false,
                })
            })
        });
        let outcome = store.commit(commit(&k, Expect::Version(1))).await;
        assert!(matches!(outcome, Err(StoreError::Unknown)), "{outcome:?}");
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_create_that_timed_out_and_landed_settles_as_applied() {
    within(async {
        let node = start(LwtShape::Scylla).await;
        let store = connect(&node).await;
        once(&node, INSERT_INSTANCE, |st, values, model| {
            model.execute(st, values);
            Reply::Error(cas_timeout())
        });
        let k = key("timeout", "create");
        assert_eq!(
            store.commit(commit(&k, Expect::Absent)).await.unwrap(),
            CasOutcome::Applied { version: 1 }
        );
        assert_eq!(node.executions(INSERT_INSTANCE).len(), 1);
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn linearizable_loads_read_at_the_serial_level() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("reads", "one");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        node.clear_seen();
        store.load_instance(&k).await.unwrap().unwrap();
        store.load_instance_linearizable(&k).await.unwrap().unwrap();
        let levels: Vec<_> = node
            .executions(SELECT_INSTANCE)
            .into_iter()
            .map(|s| s.consistency)
            .collect();
        assert_eq!(
            levels,
            [
                Some(Consistency::LocalQuorum),
                Some(Consistency::LocalSerial)
            ]
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn configured_consistency_levels_reach_the_wire() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect_with(&node, |c| {
            c.consistency = ConsistencyLevel::Quorum;
            c.serial_consistency = SerialConsistencyLevel::Serial;
        })
        .await;
        let k = key("levels", "one");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        store.commit(commit(&k, Expect::Version(1))).await.unwrap();
        store.load_instance_linearizable(&k).await.unwrap();
        for s in node
            .executions(INSERT_INSTANCE)
            .iter()
            .chain(&node.executions(UPDATE_INSTANCE))
        {
            assert_eq!(s.consistency, Some(Consistency::Quorum));
            assert_eq!(s.serial_consistency, Some(SerialConsistency::Serial));
        }
        let serial_reads = node
            .executions(SELECT_INSTANCE)
            .into_iter()
            .filter(|s| s.consistency == Some(Consistency::Serial))
            .count();
        assert_eq!(serial_reads, 1);
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn overloaded_transaction_is_unavailable_and_not_settled() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = connect(&node).await;
        let k = key("busy", "one");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        once(&node, UPDATE_INSTANCE, |_, _, _| {
            Reply::Error(DbError::Overloaded)
        });
        node.clear_seen();
        let outcome = store.commit(commit(&k, Expect::Version(1))).await;
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(
            node.executions(SELECT_INSTANCE).is_empty(),
            "nothing to settle"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn writes_after_shutdown_are_refused() {
    within(async {
        let node = start(LwtShape::Cassandra).await;
        let store = Arc::new(connect(&node).await);
        store.shutdown().await.unwrap();
        let outcome = store.commit(commit(&key("m", "i"), Expect::Absent)).await;
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))));
        node.stop().await;
    })
    .await;
}
