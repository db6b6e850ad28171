//! A connection that breaks while a transaction is in flight: the driver must not retry it,
//! and the store settles the outcome with a serial read once the pool has reconnected.

mod scylla_support;

use std::time::Duration;

use scylla_proxy::{
    Condition, Reaction, RequestFrame, RequestOpcode, RequestReaction, RequestRule,
};
use scylla_support::{
    commit, config_for, key, parsed_schema, within, LwtShape, ScriptedNode, KEYSPACE,
};
use statewire::store::scylla::ScyllaStore;
use statewire::store::{CasOutcome, Expect, Store};
use tokio::sync::mpsc;

const UPDATE_INSTANCE: &str = "UPDATE sw_wire.instances";

/// Drops the connection carrying the first EXECUTE that contains `marker` (a write id's
/// bytes), without answering it. The dropped frame is handed to the returned receiver.
fn drop_connection_on(
    node: &mut ScriptedNode,
    marker: uuid::Uuid,
) -> mpsc::UnboundedReceiver<RequestFrame> {
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    let (feedback_tx, mut feedback_rx) = mpsc::unbounded_channel();
    let condition = Condition::RequestOpcode(RequestOpcode::Execute)
        .and(Condition::BodyContainsCaseSensitive(
            marker.as_bytes().to_vec().into_boxed_slice(),
        ))
        .and(Condition::TrueForLimitedTimes(1));
    let reaction = RequestReaction::drop_connection_with_delay(Duration::from_millis(100))
        .with_feedback_when_performed(feedback_tx);
    node.prepend_rule(RequestRule(condition, reaction));
    tokio::spawn(async move {
        while let Some((frame, _shard)) = feedback_rx.recv().await {
            if frames_tx.send(frame).is_err() {
                break;
            }
        }
    });
    frames_rx
}

#[tokio::test]
async fn broken_connection_with_the_write_landed_settles_as_applied() {
    within(async {
        let mut node = ScriptedNode::start(parsed_schema(KEYSPACE), LwtShape::Cassandra).await;
        let store = ScyllaStore::connect(&config_for(node.addr)).await.unwrap();
        let k = key("broken", "landed");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        let c = commit(&k, Expect::Version(1));
        let mut dropped = drop_connection_on(&mut node, c.next.write_id);
        node.clear_seen();
        let outcome = tokio::join!(store.commit(c), async {
            // The node applies the write it received before the connection goes down.
            let frame = dropped
                .recv()
                .await
                .expect("the transaction reached the node");
            node.execute_frame(&frame);
        })
        .0;
        assert_eq!(outcome.unwrap(), CasOutcome::Applied { version: 2 });
        assert_eq!(
            node.executions(UPDATE_INSTANCE).len(),
            1,
            "neither the driver nor the store sent the transaction again"
        );
        node.stop().await;
    })
    .await;
}

#[tokio::test]
async fn broken_connection_with_nothing_landed_repeats_the_write_once() {
    within(async {
        let mut node = ScriptedNode::start(parsed_schema(KEYSPACE), LwtShape::Cassandra).await;
        let store = ScyllaStore::connect(&config_for(node.addr)).await.unwrap();
        let k = key("broken", "lost");
        store.commit(commit(&k, Expect::Absent)).await.unwrap();
        let c = commit(&k, Expect::Version(1));
        let write_id = c.next.write_id;
        let _dropped = drop_connection_on(&mut node, write_id);
        node.clear_seen();
        assert_eq!(
            store.commit(c).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
        let updates = node.executions(UPDATE_INSTANCE);
        assert_eq!(updates.len(), 1, "only the repeat reached the model");
        let stored = store.load_instance(&k).await.unwrap().unwrap();
        assert_eq!(stored.write_id, write_id);
        node.stop().await;
    })
    .await;
}
