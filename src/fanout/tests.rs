use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::patch::{apply, PatchOp};
use super::*;
use crate::ids::{InstanceName, MachineName, MachineVersionId};
use crate::store::InstanceStatus;

fn key(name: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("m").unwrap(),
        InstanceName::parse(name).unwrap(),
    )
}

/// A committed record whose view is `{state, publicContext: public, tags: [], done: false}`.
fn record(version: u64, state: Value, public: Value) -> Arc<InstanceRecord> {
    Arc::new(InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: 1_700_000_000_000 + version as i64,
        snapshot: String::new(),
        state,
        context: json!({"public": public, "private": version}),
        tags: Vec::new(),
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 0,
        updated_at_ms: 0,
        effects: Default::default(),
    })
}

fn hub() -> Fanout {
    Fanout::start(FanoutConfig {
        workers: 2,
        linger: DEFAULT_LINGER,
    })
}

/// Everything the outbox holds, as parsed frames.
fn drain(outbox: &Outbox) -> Vec<Value> {
    let mut frames = Vec::new();
    for subscription in outbox.take_ready() {
        match subscription.take() {
            Next::Frames(fs) => frames.extend(fs.iter().map(|f| serde_json::from_str(f).unwrap())),
            Next::Ended(why) => frames.push(json!({"ended": format!("{why:?}")})),
            Next::Nothing => {}
        }
    }
    frames
}

/// A new subscription of `outbox` to `topic`, attached with `record` as the state it read.
fn attach(
    hub: &Fanout,
    topic: &Arc<Topic>,
    outbox: &Arc<Outbox>,
    mode: Mode,
    record: &InstanceRecord,
) -> Result<Arc<Subscription>, Retired> {
    let subscription = hub.subscription(topic, None, outbox);
    hub.attach(&subscription, mode, record)?;
    Ok(subscription)
}

/// [`attach`] for full updates, with version 1 of a plain record as the state read.
fn attach_plain(
    hub: &Fanout,
    topic: &Arc<Topic>,
    outbox: &Arc<Outbox>,
) -> Result<Arc<Subscription>, Retired> {
    attach(
        hub,
        topic,
        outbox,
        Mode::default(),
        &record(1, json!("s"), json!({})),
    )
}

async fn commit(hub: &Fanout, key: &InstanceKey, record: &Arc<InstanceRecord>) {
    hub.on_commit(key, record, &[]);
    hub.flush().await;
}

#[tokio::test]
async fn a_subscriber_gets_the_state_it_read_then_each_commit_in_order() {
    let hub = hub();
    let k = key("a");
    let outbox = Outbox::new();
    let topic = hub.topic(&k);
    let r1 = record(1, json!("off"), json!({"n": 1}));
    attach(&hub, &topic, &outbox, Mode::default(), &r1).unwrap();
    let first = drain(&outbox);
    assert_eq!(
        first,
        vec![json!({
            "type": "instance-update", "machineName": "m", "machineInstanceName": "a",
            "state": "off", "publicContext": {"n": 1}, "tags": [], "done": false,
            "ts": r1.ts_ms, "seq": 1,
        })]
    );
    for v in 2..=4 {
        commit(&hub, &k, &record(v, json!("on"), json!({"n": v}))).await;
        let frames = drain(&outbox);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0]["seq"], v);
        assert_eq!(frames[0]["publicContext"]["n"], v);
        assert!(frames[0].get("private").is_none());
    }
}

#[tokio::test]
async fn commits_of_instances_nobody_watches_are_dropped_at_once() {
    let hub = hub();
    commit(&hub, &key("nobody"), &record(1, json!("x"), json!({}))).await;
    assert_eq!(hub.stats().topics, 0);
    assert_eq!(hub.stats().published, 0);
}

#[tokio::test]
async fn a_subscriber_that_does_not_take_its_updates_keeps_only_the_latest() {
    let hub = hub();
    let k = key("a");
    let outbox = Outbox::new();
    let topic = hub.topic(&k);
    attach_plain(&hub, &topic, &outbox).unwrap();
    for v in 2..=50 {
        commit(&hub, &k, &record(v, json!("s"), json!({"n": v}))).await;
    }
    let frames = drain(&outbox);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["seq"], 50);
    assert!(hub.stats().conflated >= 48);
}

#[tokio::test]
async fn a_diff_subscriber_gets_patches_and_a_full_update_after_a_gap_too_long_for_history() {
    let hub = hub();
    let k = key("a");
    let outbox = Outbox::new();
    let topic = hub.topic(&k);
    let mode = Mode {
        diffs: true,
        resume_from: None,
    };
    attach(
        &hub,
        &topic,
        &outbox,
        mode,
        &record(1, json!("s"), json!({"xs": []})),
    )
    .unwrap();
    assert_eq!(drain(&outbox)[0]["type"], "instance-update");
    commit(&hub, &k, &record(2, json!("s"), json!({"xs": [1]}))).await;
    let frames = drain(&outbox);
    assert_eq!(
        frames,
        vec![json!({
            "type": "instance-patch", "machineName": "m", "machineInstanceName": "a",
            "seq": 2, "prevSeq": 1, "ts": record(2, json!(0), json!(0)).ts_ms,
            "patch": [{"op": "add", "path": "/publicContext/xs/0", "value": 1}],
        })]
    );
    // A few missed updates are caught up from history, patch by patch, when that is
    // smaller than the full state.
    let big = "x".repeat(2000);
    for v in 3..=5 {
        commit(
            &hub,
            &k,
            &record(v, json!("s"), json!({"xs": [1], "v": v, "big": big})),
        )
        .await;
        if v == 3 {
            assert_eq!(drain(&outbox)[0]["seq"], 3);
        }
    }
    let frames = drain(&outbox);
    let seqs: Vec<(Value, Value)> = frames
        .iter()
        .map(|f| (f["prevSeq"].clone(), f["seq"].clone()))
        .collect();
    assert_eq!(seqs, vec![(json!(3), json!(4)), (json!(4), json!(5))]);
    // Many missed updates: history does not reach back any more, a full update comes.
    for v in 6..=(6 + history::MAX_ENTRIES as u64 + 1) {
        commit(&hub, &k, &record(v, json!("s"), json!({"v": v}))).await;
        if v == 6 {
            drain(&outbox);
        }
    }
    let frames = drain(&outbox);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["type"], "instance-update");
}

#[tokio::test]
async fn resuming_from_a_known_sequence_sends_only_what_was_missed() {
    let hub = hub();
    let k = key("a");
    let topic = hub.topic(&k);
    let first = Outbox::new();
    let diffs = Mode {
        diffs: true,
        resume_from: None,
    };
    let sub = attach(
        &hub,
        &topic,
        &first,
        diffs,
        &record(1, json!("s"), json!({"big": "x".repeat(500)})),
    )
    .unwrap();
    drain(&first);
    commit(
        &hub,
        &k,
        &record(2, json!("s"), json!({"big": "x".repeat(500), "a": 1})),
    )
    .await;
    drain(&first);
    sub.detach();
    // Missed while away: seqs 3 and 4.
    commit(
        &hub,
        &k,
        &record(3, json!("t"), json!({"big": "x".repeat(500), "a": 2})),
    )
    .await;
    let r4 = record(4, json!("u"), json!({"big": "x".repeat(500), "a": 3}));
    commit(&hub, &k, &r4).await;

    let again = Outbox::new();
    let resume = Mode {
        diffs: true,
        resume_from: Some(Base {
            seq: 2,
            ts_ms: Some(record(2, json!(0), json!(0)).ts_ms),
        }),
    };
    attach(&hub, &hub.topic(&k), &again, resume, &r4).unwrap();
    let frames = drain(&again);
    let seqs: Vec<(u64, u64)> = frames
        .iter()
        .map(|f| (f["prevSeq"].as_u64().unwrap(), f["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(seqs, vec![(2, 3), (3, 4)]);

    // A client already current gets an empty patch as confirmation.
    let current = Outbox::new();
    let up_to_date = Mode {
        diffs: true,
        resume_from: Some(Base {
            seq: 4,
            ts_ms: None,
        }),
    };
    attach(&hub, &hub.topic(&k), &current, up_to_date, &r4).unwrap();
    let frames = drain(&current);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0]["prevSeq"].clone(), frames[0]["seq"].clone()),
        (json!(4), json!(4))
    );
    assert_eq!(frames[0]["patch"], json!([]));

    // A sequence this instance never had (e.g. an earlier incarnation's) gets a full update.
    let stranger = Outbox::new();
    let future = Mode {
        diffs: true,
        resume_from: Some(Base {
            seq: 99,
            ts_ms: None,
        }),
    };
    attach(&hub, &hub.topic(&k), &stranger, future, &r4).unwrap();
    assert_eq!(drain(&stranger)[0]["type"], "instance-update");
}

#[tokio::test]
async fn deleting_the_instance_ends_its_subscriptions() {
    let hub = hub();
    let k = key("a");
    let outbox = Outbox::new();
    let topic = hub.topic(&k);
    attach_plain(&hub, &topic, &outbox).unwrap();
    drain(&outbox);
    hub.on_delete(&k);
    assert_eq!(drain(&outbox), vec![json!({"ended": "Deleted"})]);
    assert_eq!(hub.stats().topics, 0);
    // A subscribe racing the delete finds its topic retired and must look again.
    let err = attach_plain(&hub, &topic, &outbox);
    assert!(err.is_err());
}

#[tokio::test]
async fn a_subscriber_never_starts_from_a_state_older_than_the_one_it_read() {
    let hub = hub();
    let k = key("a");
    let topic = hub.topic(&k);
    // Commit 2 is published before the subscriber attaches with the record it read (1).
    commit(&hub, &k, &record(2, json!("new"), json!({}))).await;
    let outbox = Outbox::new();
    attach(
        &hub,
        &topic,
        &outbox,
        Mode::default(),
        &record(1, json!("old"), json!({})),
    )
    .unwrap();
    let frames = drain(&outbox);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["state"], "new");
}

#[tokio::test]
async fn idle_topics_are_swept_and_used_ones_stay() {
    let hub = hub();
    let used = Outbox::new();
    let topic = hub.topic(&key("used"));
    attach_plain(&hub, &topic, &used).unwrap();
    let _idle = hub.topic(&key("idle"));
    assert_eq!(hub.sweep(Duration::ZERO), 1);
    assert_eq!(hub.stats().topics, 1);
    // A failed subscribe releases the topic it made.
    let failed = hub.topic(&key("missing"));
    hub.release(&failed);
    assert_eq!(hub.stats().topics, 1);
}

/// What a client of the diff extension does with frames: full updates replace its view,
/// patches must apply to exactly the sequence it holds.
#[derive(Default, Debug)]
struct DiffClient {
    view: Option<Value>,
    seq: Option<u64>,
}

impl DiffClient {
    fn receive(&mut self, frame: &Value) -> Result<(), String> {
        match frame["type"].as_str() {
            Some("instance-update") => {
                self.view = Some(json!({
                    "state": frame["state"], "publicContext": frame["publicContext"],
                    "tags": frame["tags"], "done": frame["done"],
                }));
            }
            Some("instance-patch") => {
                if frame["prevSeq"].as_u64() != self.seq {
                    return Err(format!("patch {frame} does not apply to {:?}", self.seq));
                }
                let ops: Vec<PatchOp> = serde_json::from_value(frame["patch"].clone()).unwrap();
                let view = self.view.as_ref().ok_or("patch before any full update")?;
                self.view = Some(apply(view, &ops).map_err(|e| e.to_string())?);
            }
            _ => return Err(format!("unexpected frame {frame}")),
        }
        self.seq = frame["seq"].as_u64();
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Step {
    Commit(Value, Value),
    Deliver,
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    let json = super::patch::tests::json_value;
    prop_oneof![
        3 => (json(), json()).prop_map(|(s, p)| Step::Commit(s, p)),
        2 => Just(Step::Deliver),
        1 => Just(Step::Reconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the interleaving of commits, deliveries (the writer draining) and reconnects
    /// with resume, a diff client that applies what it receives ends with exactly the last
    /// committed view.
    #[test]
    fn diff_frames_applied_in_order_reproduce_the_latest_view(steps in prop::collection::vec(step(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let hub = hub();
            let k = key("p");
            let mut latest = record(1, json!("init"), json!({}));
            let mut outbox = Outbox::new();
            let mode = Mode { diffs: true, resume_from: None };
            let mut sub = attach(&hub, &hub.topic(&k), &outbox, mode, &latest).unwrap();
            let mut client = DiffClient::default();
            for step in steps {
                match step {
                    Step::Commit(state, public) => {
                        latest = record(latest.version + 1, state, public);
                        commit(&hub, &k, &latest).await;
                    }
                    Step::Deliver => {
                        for frame in drain(&outbox) {
                            client.receive(&frame).map_err(TestCaseError::fail)?;
                        }
                    }
                    Step::Reconnect => {
                        sub.detach();
                        outbox = Outbox::new();
                        let resume_from = client.seq.map(|seq| Base { seq, ts_ms: None });
                        let mode = Mode { diffs: true, resume_from };
                        sub = attach(&hub, &hub.topic(&k), &outbox, mode, &latest).unwrap();
                    }
                }
            }
            hub.flush().await;
            for frame in drain(&outbox) {
                client.receive(&frame).map_err(TestCaseError::fail)?;
            }
            prop_assert_eq!(client.seq, Some(latest.version));
            prop_assert_eq!(client.view, Some(update::view_of(&latest)));
            Ok(())
        })?;
    }
}
