//! The shared store contract against the ScyllaDB store: always over the wire against the
//! scripted node's table model (in both reply shapes), and against a real cluster when
//! `STATEWIRE_SCYLLA_NODES` names one.

mod scylla_support;

use std::sync::Arc;
use std::time::Duration;

use scylla_support::{config_for, parsed_schema, LwtShape, ScriptedNode, KEYSPACE};
use statewire::store::contract::{self, WakeIndex};
use statewire::store::scylla::schema::{self, SchemaParams};
use statewire::store::scylla::{ScyllaConfig, ScyllaStore};
use statewire::store::Store;

async fn run_over_the_wire(shape: LwtShape) {
    let node = ScriptedNode::start(parsed_schema(KEYSPACE), shape).await;
    let mut config = config_for(node.addr);
    config.verify_schema = true;
    let store = ScyllaStore::connect(&config).await.expect("store connects");
    let store: Arc<dyn Store> = Arc::new(store);
    contract::run_all(Arc::clone(&store), WakeIndex::MayKeepStale).await;
    store.shutdown().await.unwrap();
    node.stop().await;
}

/// Longer than `within`: the whole suite takes about 20 s through the scripted node (each
/// sequential request waits tens of milliseconds there), and CI machines are shared.
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

async fn within_suite_limit(run: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(SUITE_TIMEOUT, run)
        .await
        .expect("contract suite finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_holds_over_the_wire_with_cassandra_shaped_replies() {
    within_suite_limit(run_over_the_wire(LwtShape::Cassandra)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_holds_over_the_wire_with_scylla_shaped_replies() {
    within_suite_limit(run_over_the_wire(LwtShape::Scylla)).await;
}

/// Replication for the test keyspace on a real cluster: `STATEWIRE_SCYLLA_TEST_REPLICATION`,
/// or one replica (enough for a single-node development cluster).
fn test_replication() -> String {
    std::env::var("STATEWIRE_SCYLLA_TEST_REPLICATION").unwrap_or_else(|_| {
        "{'class': 'NetworkTopologyStrategy', 'replication_factor': 1}".to_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_holds_on_a_real_cluster() {
    if std::env::var("STATEWIRE_SCYLLA_NODES").is_err() {
        println!("skipped: no cluster (set STATEWIRE_SCYLLA_NODES)");
        return;
    }
    let run = async {
        let mut config = ScyllaConfig::from_env().expect("STATEWIRE_SCYLLA_* settings are valid");
        if std::env::var("STATEWIRE_SCYLLA_KEYSPACE").is_err() {
            config.keyspace = "statewire_contract".to_owned();
        }
        let params = SchemaParams {
            keyspace: config.keyspace.clone(),
            replication: test_replication(),
            no_tablets: std::env::var("STATEWIRE_SCYLLA_TEST_NO_TABLETS").is_ok(),
        };
        schema::apply(&config, &params, |_| {})
            .await
            .expect("schema applies");
        let store: Arc<dyn Store> =
            Arc::new(ScyllaStore::connect(&config).await.expect("store connects"));
        contract::run_all(Arc::clone(&store), WakeIndex::MayKeepStale).await;
        store.shutdown().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("contract run on the cluster timed out");
}
