//! The embedded store behaves like the in-memory store on random sequences of instance ops.
//!
//! The in-memory store is the model: small enough to be obviously right. Each case runs the
//! same ops against both and compares every answer, including full listings page by page and
//! the wake-up index read page by page.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::embedded::EmbeddedStore;
use statewire::store::memory::MemoryStore;
use statewire::store::{
    Commit, EffectState, Expect, InstanceRecord, InstanceStatus, PageRequest, Store,
    TransitionRecord,
};

#[derive(Debug, Clone)]
enum Op {
    Commit {
        instance: u8,
        expect: Option<u64>,
        with_transition: bool,
        /// Wake time, in tens of ms (few values, so times collide and move back and forth).
        wake: Option<i8>,
    },
    Delete {
        instance: u8,
    },
    Load {
        instance: u8,
    },
    ListTransitions {
        instance: u8,
        limit: usize,
    },
    ListInstances {
        limit: usize,
    },
    Wakeups {
        until: i8,
        limit: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0..3u8,
            proptest::option::of(0..6u64),
            any::<bool>(),
            proptest::option::of(-2..3i8),
        )
            .prop_map(|(instance, expect, with_transition, wake)| Op::Commit {
                instance,
                expect,
                with_transition,
                wake,
            }),
        1 => (0..3u8).prop_map(|instance| Op::Delete { instance }),
        1 => (0..3u8).prop_map(|instance| Op::Load { instance }),
        1 => (0..3u8, 0..4usize).prop_map(|(instance, limit)| Op::ListTransitions { instance, limit }),
        1 => (1..3usize).prop_map(|limit| Op::ListInstances { limit }),
        2 => (-3..4i8, 1..3usize).prop_map(|(until, limit)| Op::Wakeups { until, limit }),
    ]
}

fn key(instance: u8) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("model").unwrap(),
        InstanceName::parse(format!("i{instance}")).unwrap(),
    )
}

/// A record that depends only on its arguments, so both stores get identical bytes.
fn commit(
    instance: u8,
    expect: Expect,
    step: usize,
    with_transition: bool,
    wake: Option<i8>,
) -> Commit {
    let version = expect.next_version().unwrap();
    let step = step as i64;
    Commit {
        key: key(instance),
        expect,
        next: InstanceRecord {
            machine_version: MachineVersionId::parse(&format!("ver_m{}", step % 3)).unwrap(),
            desired_machine_version: None,
            status: if step % 2 == 0 {
                InstanceStatus::Running
            } else {
                InstanceStatus::Paused
            },
            version,
            ts_ms: step,
            snapshot: format!("{{\"step\":{step}}}"),
            state: serde_json::json!({ "step": step }),
            context: serde_json::json!({}),
            tags: vec![],
            done: false,
            write_id: uuid::Uuid::from_u128(step as u128),
            created_at_ms: step,
            updated_at_ms: step,
            effects: EffectState {
                wake_at_ms: wake.map(|w| i64::from(w) * 10),
                ..EffectState::default()
            },
        },
        transition: with_transition.then(|| TransitionRecord {
            version,
            created_at_ms: step,
            event: serde_json::json!({ "step": step }),
            state: serde_json::json!({ "step": step }),
        }),
    }
}

/// Everything an op answered, in a form both stores can be compared by.
async fn answer(store: &Arc<dyn Store>, op: &Op, step: usize) -> String {
    match op {
        Op::Commit {
            instance,
            expect,
            with_transition,
            wake,
        } => {
            let expect = expect.map_or(Expect::Absent, Expect::Version);
            let c = commit(*instance, expect, step, *with_transition, *wake);
            format!("{:?}", store.commit(c).await)
        }
        Op::Delete { instance } => format!("{:?}", store.delete_instance(&key(*instance)).await),
        Op::Load { instance } => format!("{:?}", store.load_instance(&key(*instance)).await),
        Op::ListTransitions { instance, limit } => {
            let mut pages = Vec::new();
            let mut cursor = None;
            loop {
                let request = PageRequest {
                    cursor: cursor.take(),
                    limit: *limit,
                };
                let page = store.list_transitions(&key(*instance), &request).await;
                let page = page.unwrap();
                pages.push(format!("{:?}", page.items));
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            pages.join(" | ")
        }
        Op::ListInstances { limit } => {
            let machine = MachineName::parse("model").unwrap();
            let mut pages = Vec::new();
            let mut cursor = None;
            loop {
                let request = PageRequest {
                    cursor: cursor.take(),
                    limit: *limit,
                };
                let page = store.list_instances(&machine, &request).await.unwrap();
                pages.push(format!("{:?}", page.items));
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            pages.join(" | ")
        }
        Op::Wakeups { until, limit } => {
            let until = i64::from(*until) * 10;
            let mut pages = Vec::new();
            let mut page = store.due_wakeups(until, *limit).await.unwrap();
            while !page.is_empty() {
                pages.push(format!("{page:?}"));
                let last = page.last().cloned();
                page = store
                    .wakeups_after(last.as_ref(), until, *limit)
                    .await
                    .unwrap();
            }
            pages.join(" | ")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn embedded_store_answers_like_the_model(ops in proptest::collection::vec(op(), 1..32)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = async {
            let model: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let embedded: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
            for (step, op) in ops.iter().enumerate() {
                let expected = answer(&model, op, step).await;
                let got = answer(&embedded, op, step).await;
                if expected != got {
                    return Err(format!("step {step}, {op:?}:\n model {expected}\n  got {got}"));
                }
            }
            embedded.shutdown().await.map_err(|e| e.to_string())
        };
        let outcome = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), run).await })
            .expect("case finishes in time");
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
