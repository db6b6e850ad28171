//! Effect state and the wake-up index of the ScyllaDB store, on the wire: the intent written
//! before the transaction, its key, TTL and consistency; no rewrite for an unchanged wake
//! time; how a scan reads the partitions of its window; rows without effect state.

mod scylla_support;

use std::time::{SystemTime, UNIX_EPOCH};

use scylla_cql::frame::response::error::DbError;
use scylla_cql::frame::types::Consistency;
use scylla_proxy::RequestOpcode;
use scylla_support::{
    commit, config_for, key, parsed_schema, within, LwtShape, Reply, ScriptedNode, Value, KEYSPACE,
};
use statewire::ids::InstanceKey;
use statewire::store::scylla::{
    statement_texts, ttl_seconds, wakeup_bucket, wakeup_shard, ScyllaStore, WAKEUP_LOOKBACK_MS,
    WAKEUP_SHARDS,
};
use statewire::store::{
    CasOutcome, Commit, EffectState, Expect, Store, StoreError, TimerRecord, Wakeup,
};

const WAKEUP_INSERT: &str = "INSERT INTO sw_wire.wakeups";
const SCAN_BETWEEN: &str = "SELECT wake_at_ms, machine, instance FROM sw_wire.wakeups \
    WHERE shard = ? AND minute_bucket = ? AND wake_at_ms >= ?";
const SCAN_AFTER_INSTANCE: &str = "SELECT wake_at_ms, machine, instance FROM sw_wire.wakeups \
    WHERE shard = ? AND minute_bucket = ? AND wake_at_ms = ? AND machine = ? AND instance > ?";
const SCAN_AFTER_MACHINE: &str = "SELECT wake_at_ms, machine, instance FROM sw_wire.wakeups \
    WHERE shard = ? AND minute_bucket = ? AND wake_at_ms = ? AND machine > ?";
const INSERT_INSTANCE: &str = "INSERT INTO sw_wire.instances";
const UPDATE_INSTANCE: &str = "UPDATE sw_wire.instances";

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    since.as_millis() as i64
}

async fn start() -> (ScriptedNode, ScyllaStore) {
    let node = ScriptedNode::start(parsed_schema(KEYSPACE), LwtShape::Cassandra).await;
    let store = ScyllaStore::connect(&config_for(node.addr)).await.unwrap();
    (node, store)
}

/// A commit from `expect` whose record carries a timer and the wake time `wake`.
fn commit_waking(k: &InstanceKey, expect: Expect, wake: Option<i64>) -> Commit {
    let mut c = commit(k, expect);
    c.next.effects = EffectState {
        wake_at_ms: wake,
        ..EffectState::default()
    };
    if let Some(due_at_ms) = wake {
        c.next.effects.arm_timer(TimerRecord {
            id: "after".to_owned(),
            seq: c.next.version,
            due_at_ms,
            event: serde_json::json!({ "type": "xstate.after(1000)#m.a" }),
            target: None,
            attempts: 0,
            next_attempt_at_ms: None,
        });
    }
    c
}

/// The statement kinds executed, in order, by the first word of their table clause.
fn order(node: &ScriptedNode) -> Vec<String> {
    node.seen()
        .into_iter()
        .filter(|s| s.opcode == RequestOpcode::Execute)
        .map(|s| s.cql.split(" (").next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_wake_time_is_indexed_before_the_transaction_with_its_shard_minute_and_ttl() {
    within(async {
        let (node, store) = start().await;
        let k = key("alarm", "one");
        let wake = now_ms() + 90_000;
        let c = commit_waking(&k, Expect::Absent, Some(wake));
        let effects = c.next.effects.clone();
        let before = now_ms();
        assert_eq!(
            store.commit(c).await.unwrap(),
            CasOutcome::Applied { version: 1 }
        );
        let after = now_ms();

        let executed = order(&node);
        let at = |prefix: &str| executed.iter().position(|s| s == prefix).unwrap();
        assert!(
            at("INSERT INTO sw_wire.wakeups") < at("INSERT INTO sw_wire.instances"),
            "the index entry precedes the row: {executed:?}"
        );
        let intents = node.executions(WAKEUP_INSERT);
        assert_eq!(intents.len(), 1);
        let v = &intents[0].values;
        assert_eq!(v[0], Value::Int(wakeup_shard(&k)));
        assert_eq!(v[1], Value::BigInt(wakeup_bucket(wake)));
        assert_eq!(v[2], Value::BigInt(wake));
        assert_eq!(v[3], Value::Text("alarm".into()));
        assert_eq!(v[4], Value::Text("one".into()));
        let ttl = v[5].as_int().unwrap();
        assert!(
            (ttl_seconds(wake, after)..=ttl_seconds(wake, before)).contains(&ttl),
            "ttl {ttl}"
        );
        assert_eq!(intents[0].consistency, Some(Consistency::LocalQuorum));

        let insert = &node.executions(INSERT_INSTANCE)[0];
        let stored: EffectState =
            serde_json::from_str(insert.values[15].as_text().unwrap()).unwrap();
        assert_eq!(stored, effects, "the effects column holds the effect state");
        let loaded = store.load_instance(&k).await.unwrap().unwrap();
        assert_eq!(loaded.effects, effects);
        let found = store.due_wakeups(wake, 10).await.unwrap();
        assert_eq!(
            found,
            [Wakeup {
                wake_at_ms: wake,
                key: k.clone()
            }]
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn only_a_changed_wake_time_costs_an_index_write() {
    within(async {
        let (node, store) = start().await;
        let k = key("alarm", "two");
        let wake = now_ms() + 60_000;
        let steps = [Some(wake), Some(wake), Some(wake + 5), None, Some(wake + 5)];
        let mut writes = Vec::new();
        for (i, w) in steps.into_iter().enumerate() {
            let expect = match i {
                0 => Expect::Absent,
                n => Expect::Version(n as u64),
            };
            node.clear_seen();
            store.commit(commit_waking(&k, expect, w)).await.unwrap();
            writes.push(node.executions(WAKEUP_INSERT).len());
            if node.executions(WAKEUP_INSERT).len() == 1 {
                let executed = order(&node);
                let entry = executed.iter().position(|s| s.contains("wakeups"));
                let row = executed.iter().position(|s| s.contains(".instances"));
                assert!(entry < row, "{executed:?}");
            }
        }
        assert_eq!(
            writes,
            [1, 0, 1, 0, 0],
            "new, unchanged, moved, cleared, back to one still indexed"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wake_time_already_past_is_indexed_when_written() {
    within(async {
        let (node, store) = start().await;
        let k = key("alarm", "late");
        let wake = now_ms() - 3_600_000;
        let before = now_ms();
        store
            .commit(commit_waking(&k, Expect::Absent, Some(wake)))
            .await
            .unwrap();
        let after = now_ms();
        let indexed = node.executions(WAKEUP_INSERT)[0].values[2]
            .as_bigint()
            .unwrap();
        assert!((before..=after).contains(&indexed), "{indexed}");
        let found = store.due_wakeups(after, 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, k);
        assert_eq!(found[0].wake_at_ms, indexed);
        let row = store.load_instance(&k).await.unwrap().unwrap();
        assert_eq!(row.effects.wake_at_ms, Some(wake), "the row keeps its own");
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_scan_reads_every_shard_of_each_minute_in_its_window_at_local_quorum() {
    within(async {
        let (node, store) = start().await;
        let now = now_ms();
        let until = now + 30_000;
        node.clear_seen();
        assert!(store.due_wakeups(until, 100).await.unwrap().is_empty());
        let reads = node.executions(SCAN_BETWEEN);
        let start = until.min(now_ms()) - WAKEUP_LOOKBACK_MS;
        let minutes: Vec<i64> = (wakeup_bucket(start)..=wakeup_bucket(until)).collect();
        let mut partitions: Vec<(i32, i64)> = reads
            .iter()
            .map(|r| {
                (
                    r.values[0].as_int().unwrap(),
                    r.values[1].as_bigint().unwrap(),
                )
            })
            .collect();
        partitions.sort();
        partitions.dedup();
        // The scan's own clock may have read one millisecond later than ours.
        let expected = minutes.len() as i32 * WAKEUP_SHARDS;
        assert!(
            (expected..=expected + WAKEUP_SHARDS).contains(&(partitions.len() as i32)),
            "{} partitions for {} minutes",
            partitions.len(),
            minutes.len()
        );
        assert_eq!(partitions.len(), reads.len(), "each partition read once");
        for r in &reads {
            assert_eq!(r.consistency, Some(Consistency::LocalQuorum));
            let to = r.values[3].as_bigint().unwrap();
            assert!(to <= until, "never past `until`");
        }
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn paging_after_an_entry_reads_its_millisecond_past_its_key() {
    within(async {
        let (node, store) = start().await;
        let wake = now_ms() + 120_000;
        let keys: Vec<InstanceKey> = ["a", "b", "c"].iter().map(|i| key("tie", i)).collect();
        let other = key("tiz", "a");
        for k in keys.iter().chain([&other]) {
            store
                .commit(commit_waking(k, Expect::Absent, Some(wake)))
                .await
                .unwrap();
        }
        let first = store.due_wakeups(wake, 1).await.unwrap();
        assert_eq!(first[0].key, keys[0]);
        node.clear_seen();
        let rest = store.wakeups_after(first.last(), wake, 10).await.unwrap();
        let rest_keys: Vec<&InstanceKey> = rest.iter().map(|w| &w.key).collect();
        assert_eq!(rest_keys, [&keys[1], &keys[2], &other]);
        assert_eq!(
            node.executions(SCAN_AFTER_INSTANCE).len(),
            WAKEUP_SHARDS as usize
        );
        assert_eq!(
            node.executions(SCAN_AFTER_MACHINE).len(),
            WAKEUP_SHARDS as usize
        );
        let again = store.wakeups_after(rest.last(), wake, 10).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failed_index_write_fails_the_commit_before_any_transaction() {
    within(async {
        let (node, store) = start().await;
        let k = key("alarm", "refused");
        node.intercept(|st, _, _| {
            st.cql
                .starts_with(WAKEUP_INSERT)
                .then_some(Reply::Error(DbError::Overloaded))
        });
        let outcome = store
            .commit(commit_waking(&k, Expect::Absent, Some(now_ms() + 1_000)))
            .await;
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(node.executions(INSERT_INSTANCE).is_empty());
        assert_eq!(store.load_instance(&k).await.unwrap(), None);
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        node.clear_seen();
        let outcome = store
            .commit(commit_waking(
                &k,
                Expect::Version(1),
                Some(now_ms() + 1_000),
            ))
            .await;
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))));
        assert!(node.executions(UPDATE_INSTANCE).is_empty());
        node.stop().await;
    })
    .await;
}

/// Seeds an instance row directly in the model, with `effects` as given.
fn seed_row(node: &ScriptedNode, k: &InstanceKey, effects: Value) {
    let cql = statement_texts(KEYSPACE)
        .into_iter()
        .find(|t| t.name == "instance_insert")
        .unwrap()
        .cql;
    let statement = node.state.model.schema.lock().statement(&cql).unwrap();
    let text = |s: &str| Value::Text(s.to_owned());
    let values = vec![
        text(k.machine.as_str()),
        text(k.instance.as_str()),
        Value::BigInt(1),
        text("ver_old"),
        Value::Null,
        text("running"),
        Value::BigInt(5),
        text("{}"),
        text("\"idle\""),
        text("{}"),
        Value::List(vec![]),
        Value::Boolean(false),
        Value::Uuid(uuid::Uuid::new_v4()),
        Value::BigInt(1),
        Value::BigInt(2),
        effects,
    ];
    node.state.model.execute(&statement, &values);
}

#[tokio::test]
async fn rows_without_effects_read_as_empty_and_garbage_is_corrupt() {
    within(async {
        let (node, store) = start().await;
        let old = key("legacy", "row");
        seed_row(&node, &old, Value::Null);
        let loaded = store.load_instance(&old).await.unwrap().unwrap();
        assert_eq!(loaded.effects, EffectState::default());
        assert_eq!(loaded.version, 1);

        let bad = key("legacy", "bad");
        seed_row(&node, &bad, Value::Text("{not json".into()));
        let err = store.load_instance(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");

        let cleared = commit_waking(&old, Expect::Version(1), None);
        store.commit(cleared).await.unwrap();
        let update = &node.executions(UPDATE_INSTANCE)[0];
        assert_eq!(update.values[12], Value::Null, "no effect state, no JSON");
        node.stop().await;
    })
    .await;
}
