//! The embedded store: the shared contract, durability across reopen (the wake-up index
//! included), poisoning, shutdown. The file format has its own tests in `store_format.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use statewire::ids::{InstanceKey, InstanceName, KeyId, MachineName, MachineVersionId};
use statewire::store::contract::{self, WakeIndex};
use statewire::store::embedded::{EmbeddedStore, FILE_NAME};
use statewire::store::{
    CasOutcome, Commit, Expect, InstanceRecord, InstanceStatus, KeyRecord, MachineRecord,
    PageRequest, Store, StoreError, TransitionRecord, VersionRecord, Wakeup,
};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("test finishes in time")
}

fn key(machine: &str, instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse(machine).unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

fn record(version: u64) -> InstanceRecord {
    InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: 1_000 + version as i64,
        snapshot: format!("{{\"v\":{version}}}"),
        state: serde_json::json!({ "v": version }),
        context: serde_json::json!({ "public": {} }),
        tags: vec![],
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1_000,
        updated_at_ms: 1_000 + version as i64,
        effects: Default::default(),
    }
}

fn transition(version: u64) -> TransitionRecord {
    TransitionRecord {
        version,
        created_at_ms: 1_000 + version as i64,
        event: serde_json::json!({ "type": "bump" }),
        state: serde_json::json!({ "v": version }),
    }
}

fn commit(key: &InstanceKey, expect: Expect, version: u64) -> Commit {
    Commit {
        key: key.clone(),
        expect,
        next: record(version),
        transition: Some(transition(version)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    within(contract::run_all(
        Arc::clone(&store) as Arc<dyn Store>,
        WakeIndex::Exact,
    ))
    .await;
    let stats = store.stats();
    assert!(stats.commits > 0 && stats.ops >= stats.commits, "{stats:?}");
    assert!(
        stats.conflicts > 0,
        "the suite provokes conflicts: {stats:?}"
    );
    within(store.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_after_drop_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let machine = MachineName::parse("door").unwrap();
    let k = key("door", "front");
    let version = VersionRecord {
        machine: machine.clone(),
        id: MachineVersionId::generate(),
        created_at_ms: 5,
        client_info: "v1".to_owned(),
        code_hash: "ab".repeat(32),
        index_selectors: serde_json::json!({}),
    };
    let signing_key = KeyRecord {
        id: KeyId::generate(),
        name: "ci".to_owned(),
        scopes: vec!["admin".to_owned()],
        secret: "sbsec_x".to_owned(),
        created_at_ms: 9,
    };
    let mut last = None;
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let m = MachineRecord {
            name: machine.clone(),
            created_at_ms: 1,
            indexes: vec![],
            current_version: None,
        };
        assert!(store.create_machine(&m).await.unwrap());
        store.put_version(&version).await.unwrap();
        store
            .set_current_version(&machine, &version.id)
            .await
            .unwrap();
        store.put_bundle("ab", b"code").await.unwrap();
        store.put_key(&signing_key).await.unwrap();
        store.put_meta("org", b"org_1").await.unwrap();
        for v in 1..=5 {
            let expect = if v == 1 {
                Expect::Absent
            } else {
                Expect::Version(v - 1)
            };
            let c = commit(&k, expect, v);
            last = Some(c.next.clone());
            assert_eq!(
                store.commit(c).await.unwrap(),
                CasOutcome::Applied { version: v }
            );
        }
    })
    .await;
    assert!(dir.path().join(FILE_NAME).exists());

    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let m = store.get_machine(&machine).await.unwrap().unwrap();
        assert_eq!(m.current_version.as_ref(), Some(&version.id));
        let read = store.get_version(&machine, &version.id).await.unwrap();
        assert_eq!(read, Some(version.clone()));
        assert_eq!(
            store.get_bundle("ab").await.unwrap(),
            Some(b"code".to_vec())
        );
        assert_eq!(
            store.get_key(&signing_key.id).await.unwrap(),
            Some(signing_key.clone())
        );
        assert_eq!(
            store.get_meta("org").await.unwrap(),
            Some(b"org_1".to_vec())
        );
        assert_eq!(store.load_instance(&k).await.unwrap(), last);
        let history = store.list_transitions(&k, &PageRequest::default()).await;
        let versions: Vec<u64> = history.unwrap().items.iter().map(|t| t.version).collect();
        assert_eq!(versions, vec![5, 4, 3, 2, 1]);
        let next = commit(&k, Expect::Version(5), 6);
        assert_eq!(
            store.commit(next).await.unwrap(),
            CasOutcome::Applied { version: 6 }
        );
        store.shutdown().await.unwrap();
    })
    .await;

    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let loaded = store.load_instance(&k).await.unwrap().unwrap();
        assert_eq!(loaded.version, 6, "a write before shutdown() survives it");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_poisons_the_store_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("m", "a");
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let first = commit(&k, Expect::Absent, 1);
        assert_eq!(
            store.commit(first).await.unwrap(),
            CasOutcome::Applied { version: 1 }
        );

        store.fail_next_commit();
        let failed = store.commit(commit(&k, Expect::Version(1), 2)).await;
        assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
        assert!(store.stats().poisoned);

        let refused = store.put_meta("org", b"x").await.unwrap_err();
        let StoreError::Backend(message) = &refused else {
            panic!("poisoned store answers Backend, got {refused:?}");
        };
        assert!(message.contains("refuses writes"), "{message}");
        let retry = store.commit(commit(&k, Expect::Version(1), 2)).await;
        assert!(matches!(retry, Err(StoreError::Backend(_))), "{retry:?}");
        assert_eq!(
            store.stats().commits,
            1,
            "nothing is committed once poisoned"
        );

        let read = store.load_instance(&k).await.unwrap().unwrap();
        assert_eq!(read.version, 1, "reads keep serving the last good commit");
    })
    .await;

    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(!store.stats().poisoned);
        assert_eq!(store.load_instance(&k).await.unwrap().unwrap().version, 1);
        let again = commit(&k, Expect::Version(1), 2);
        assert_eq!(
            store.commit(again).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_of_a_failed_batch_fails() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.fail_next_commit();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = Arc::clone(&store);
                let c = commit(&key("m", &format!("i{i}")), Expect::Absent, 1);
                tokio::spawn(async move { store.commit(c).await })
            })
            .collect();
        for t in tasks {
            let outcome = t.await.unwrap();
            assert!(
                matches!(outcome, Err(StoreError::Backend(_))),
                "{outcome:?}"
            );
        }
        let stats = store.stats();
        assert_eq!((stats.commits, stats.ops), (0, 0), "{stats:?}");
        assert!(stats.failed_batches >= 1 && stats.poisoned, "{stats:?}");
    })
    .await;
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let machine = MachineName::parse("m").unwrap();
        let listed = store
            .list_instances(&machine, &PageRequest::default())
            .await;
        assert!(
            listed.unwrap().items.is_empty(),
            "the failed batch left nothing"
        );
    })
    .await;
}

/// Writes racing a shutdown are either committed and acknowledged, or refused and absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_what_was_queued_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut outcomes = Vec::new();
    within(async {
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                let c = commit(&key("m", &format!("i{i}")), Expect::Absent, 1);
                tokio::spawn(async move { store.commit(c).await })
            })
            .collect();
        tokio::task::yield_now().await;
        store.shutdown().await.unwrap();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
    })
    .await;
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for (i, outcome) in outcomes.iter().enumerate() {
            let stored = store
                .load_instance(&key("m", &format!("i{i}")))
                .await
                .unwrap();
            match outcome {
                Ok(CasOutcome::Applied { version: 1 }) => {
                    assert!(stored.is_some(), "acknowledged i{i} is on disk")
                }
                Err(StoreError::Unavailable(_)) => {
                    assert!(stored.is_none(), "refused i{i} was not written")
                }
                other => panic!("i{i}: unexpected outcome {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_shutdown_are_refused_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put_meta("a", b"1").await.unwrap();
        store.shutdown().await.unwrap();
        store.shutdown().await.unwrap();
        let err = store.put_meta("b", b"2").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(store.get_meta("a").await.unwrap(), Some(b"1".to_vec()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..256)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let k = key("many", &format!("i{i}"));
                    store.commit(commit(&k, Expect::Absent, 1)).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), CasOutcome::Applied { version: 1 });
        }
        let stats = store.stats();
        assert_eq!(stats.ops, 256);
        assert!(
            stats.commits < 256,
            "some commits carried several ops: {stats:?}"
        );
        assert!(stats.largest_batch_ops > 1, "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        let _first = EmbeddedStore::open(dir.path()).unwrap();
        let second = EmbeddedStore::open(dir.path());
        assert!(matches!(second, Err(StoreError::Unavailable(_))));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wake_index_survives_reopening_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<InstanceKey> = (0..6).map(|i| key("alarm", &format!("a{i}"))).collect();
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let mut c = commit(k, Expect::Absent, 1);
            c.next.effects.wake_at_ms = Some(1_000 - i as i64 * 100);
            store.commit(c).await.unwrap();
            if i % 2 == 0 {
                let mut moved = commit(k, Expect::Version(1), 2);
                moved.next.effects.wake_at_ms = (i != 0).then_some(5_000 + i as i64);
                store.commit(moved).await.unwrap();
            }
        }
        store.shutdown().await.unwrap();
    })
    .await;
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut expected = Vec::new();
        for k in &keys {
            let row = store.load_instance(k).await.unwrap().unwrap();
            if let Some(wake_at_ms) = row.effects.wake_at_ms {
                expected.push(Wakeup {
                    wake_at_ms,
                    key: k.clone(),
                });
            }
        }
        expected.sort();
        assert_eq!(expected.len(), 5, "a0 cleared its wake time");
        assert_eq!(store.due_wakeups(i64::MAX, 100).await.unwrap(), expected);
        assert_eq!(
            store.due_wakeups(700, 100).await.unwrap(),
            expected[..2].to_vec(),
            "a5 at 500 and a3 at 700"
        );
        let negative = store.due_wakeups(i64::MIN, 100).await.unwrap();
        assert!(negative.is_empty());
    })
    .await;
}
