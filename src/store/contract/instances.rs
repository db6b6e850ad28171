//! Instances: compare-and-set, history, concurrency, read-your-writes, deletion.

use std::sync::Arc;

use super::{
    collect_pages, instance_key, instance_record, page, transition_record, unique_machine,
};
use crate::ids::InstanceKey;
use crate::store::{CasOutcome, Commit, Expect, PageRequest, Store};

fn commit(key: &InstanceKey, expect: Expect, version: u64, with_transition: bool) -> Commit {
    Commit {
        key: key.clone(),
        expect,
        next: instance_record(version),
        transition: with_transition.then(|| transition_record(version)),
    }
}

async fn cas(store: &Arc<dyn Store>, c: Commit) -> CasOutcome {
    store.commit(c).await.expect("commit succeeds")
}

/// Reads of anything never written find nothing, and deletes of it report `false`.
pub async fn unknown_keys_read_as_none(store: &Arc<dyn Store>) {
    let machine = unique_machine("unknown");
    let key = instance_key(&machine, "nobody");
    let first = PageRequest::default();
    assert_eq!(store.load_instance(&key).await.unwrap(), None);
    assert_eq!(store.load_instance_linearizable(&key).await.unwrap(), None);
    assert!(store
        .list_transitions(&key, &first)
        .await
        .unwrap()
        .items
        .is_empty());
    let instances = store.list_instances(&machine, &first).await.unwrap();
    assert!(instances.items.is_empty() && instances.cursor.is_none());
    assert!(!store.has_instances(&machine).await.unwrap());
    assert!(!store.delete_instance(&key).await.unwrap());
    assert_eq!(store.get_machine(&machine).await.unwrap(), None);
    assert!(!store.delete_machine(&machine).await.unwrap());
    let version = crate::ids::MachineVersionId::generate();
    assert_eq!(store.get_version(&machine, &version).await.unwrap(), None);
    assert!(store
        .list_versions(&machine, &first)
        .await
        .unwrap()
        .items
        .is_empty());
    let id = format!("upload-{}", uuid::Uuid::new_v4());
    assert_eq!(store.get_upload(&id).await.unwrap(), None);
    let key_id = crate::ids::KeyId::generate();
    assert_eq!(store.get_key(&key_id).await.unwrap(), None);
    assert!(!store.delete_key(&key_id).await.unwrap());
    assert_eq!(store.get_bundle(&id).await.unwrap(), None);
    assert_eq!(store.get_meta(&id).await.unwrap(), None);
}

/// A create applies once; a second create of the same key conflicts and changes nothing.
pub async fn create_then_duplicate_conflicts(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("create"), "a");
    let first = commit(&key, Expect::Absent, 1, true);
    let stored = first.next.clone();
    assert_eq!(cas(store, first).await, CasOutcome::Applied { version: 1 });
    let again = commit(&key, Expect::Absent, 1, true);
    assert_eq!(
        cas(store, again).await,
        CasOutcome::Conflict { current: Some(1) }
    );
    assert_eq!(store.load_instance(&key).await.unwrap(), Some(stored));
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    assert_eq!(history.unwrap().items, vec![transition_record(1)]);
}

/// `Version(n)` applies only when the stored version is exactly `n`.
pub async fn cas_checks_the_stored_version(store: &Arc<dyn Store>) {
    let machine = unique_machine("cas");
    let key = instance_key(&machine, "a");
    assert_eq!(
        cas(store, commit(&key, Expect::Absent, 1, false)).await,
        CasOutcome::Applied { version: 1 }
    );
    let update = commit(&key, Expect::Version(1), 2, false);
    let stored = update.next.clone();
    assert_eq!(cas(store, update).await, CasOutcome::Applied { version: 2 });
    let stale = commit(&key, Expect::Version(1), 2, false);
    assert_eq!(
        cas(store, stale).await,
        CasOutcome::Conflict { current: Some(2) },
        "a stale expectation conflicts"
    );
    let future = commit(&key, Expect::Version(9), 10, false);
    assert_eq!(
        cas(store, future).await,
        CasOutcome::Conflict { current: Some(2) },
        "a future expectation conflicts"
    );
    let missing = commit(&instance_key(&machine, "b"), Expect::Version(1), 2, false);
    assert_eq!(
        cas(store, missing).await,
        CasOutcome::Conflict { current: None },
        "an update of a missing instance conflicts with nothing stored"
    );
    assert_eq!(store.load_instance(&key).await.unwrap(), Some(stored));
    let b = instance_key(&machine, "b");
    assert_eq!(store.load_instance(&b).await.unwrap(), None);
}

/// A commit whose record does not carry the version it produces is an error and writes nothing.
pub async fn commits_with_a_wrong_next_version_are_refused(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("badver"), "a");
    let mut create = commit(&key, Expect::Absent, 1, true);
    create.next.version = 2;
    assert!(store.commit(create).await.is_err());
    let mut create = commit(&key, Expect::Absent, 1, true);
    if let Some(t) = create.transition.as_mut() {
        t.version = 7;
    }
    assert!(store.commit(create).await.is_err());
    assert_eq!(store.load_instance(&key).await.unwrap(), None);
    assert_eq!(
        cas(store, commit(&key, Expect::Absent, 1, false)).await,
        CasOutcome::Applied { version: 1 }
    );
    let skip = commit(&key, Expect::Version(1), 3, false);
    assert!(store.commit(skip).await.is_err());
    assert_eq!(store.load_instance(&key).await.unwrap().unwrap().version, 1);
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    assert!(history.unwrap().items.is_empty());
}

/// History holds one record per applied commit that carried one, newest first, in pages.
pub async fn transitions_are_written_iff_applied_newest_first(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("history"), "a");
    assert_eq!(
        cas(store, commit(&key, Expect::Absent, 1, true)).await,
        CasOutcome::Applied { version: 1 }
    );
    for v in 2..=7u64 {
        let conflicting = commit(&key, Expect::Version(v), v + 1, true);
        assert_eq!(
            cas(store, conflicting).await,
            CasOutcome::Conflict {
                current: Some(v - 1)
            }
        );
        // Version 4 is written without a history entry (a status change, say).
        let applied = commit(&key, Expect::Version(v - 1), v, v != 4);
        assert_eq!(
            cas(store, applied).await,
            CasOutcome::Applied { version: v }
        );
    }
    let expected: Vec<_> = [7, 6, 5, 3, 2, 1].map(transition_record).to_vec();

    let all = store.list_transitions(&key, &PageRequest::default()).await;
    let all = all.unwrap();
    assert_eq!(all.items, expected, "newest first, only applied commits");
    assert_eq!(all.cursor, None);

    let exact = store.list_transitions(&key, &page(6, None)).await.unwrap();
    assert_eq!(exact.items, expected);
    assert_eq!(exact.cursor, None, "no cursor when nothing is left");

    for limit in [1, 2, 4, 5] {
        let paged = collect_pages(limit, |p| {
            let store = Arc::clone(store);
            let key = key.clone();
            async move { store.list_transitions(&key, &p).await.unwrap() }
        })
        .await;
        assert_eq!(paged, expected, "paging by {limit}");
    }
}

/// Of many writers racing with the same expectation, exactly one wins.
pub async fn concurrent_cas_on_one_key_applies_once(store: &Arc<dyn Store>) {
    const WRITERS: u64 = 32;
    let key = instance_key(&unique_machine("race"), "a");
    let race = |expect: Expect, version: u64| {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|_| {
                let store = Arc::clone(store);
                let c = commit(&key, expect, version, true);
                tokio::spawn(async move { store.commit(c).await.expect("commit succeeds") })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for t in tasks {
                outcomes.push(t.await.expect("writer task completes"));
            }
            outcomes
        }
    };
    for (expect, version) in [(Expect::Absent, 1), (Expect::Version(1), 2)] {
        let outcomes = race(expect, version).await;
        let applied = outcomes
            .iter()
            .filter(|o| **o == CasOutcome::Applied { version })
            .count();
        let lost = outcomes
            .iter()
            .filter(|o| {
                **o == CasOutcome::Conflict {
                    current: Some(version),
                }
            })
            .count();
        assert_eq!(
            applied, 1,
            "exactly one of {WRITERS} racing writers applies"
        );
        assert_eq!(
            lost as u64,
            WRITERS - 1,
            "the others see the winner's version"
        );
    }
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    let versions: Vec<u64> = history.unwrap().items.iter().map(|t| t.version).collect();
    assert_eq!(versions, vec![2, 1]);
}

/// Once a commit is acknowledged, both kinds of read return exactly its record.
pub async fn reads_see_acknowledged_writes(store: &Arc<dyn Store>) {
    let key = instance_key(&unique_machine("ryw"), "a");
    for version in 1..=6u64 {
        let expect = match version {
            1 => Expect::Absent,
            n => Expect::Version(n - 1),
        };
        let c = commit(&key, expect, version, true);
        let written = c.next.clone();
        assert_eq!(cas(store, c).await, CasOutcome::Applied { version });
        let read = store.load_instance(&key).await.unwrap();
        assert_eq!(read.as_ref(), Some(&written));
        let settled = store.load_instance_linearizable(&key).await.unwrap();
        assert_eq!(
            settled.map(|r| r.write_id),
            Some(written.write_id),
            "the write id settles whose write is stored"
        );
    }
}

/// A thousand different instances written at once all apply, then list by name.
pub async fn independent_keys_all_apply_concurrently(store: &Arc<dyn Store>) {
    const KEYS: usize = 1000;
    let machine = unique_machine("many");
    let names: Vec<String> = (0..KEYS).map(|i| format!("i{i:04}")).collect();
    for (expect, version) in [(Expect::Absent, 1), (Expect::Version(1), 2)] {
        let tasks: Vec<_> = names
            .iter()
            .map(|name| {
                let store = Arc::clone(store);
                let c = commit(&instance_key(&machine, name), expect, version, true);
                tokio::spawn(async move { store.commit(c).await.expect("commit succeeds") })
            })
            .collect();
        for t in tasks {
            let outcome = t.await.expect("writer task completes");
            assert_eq!(outcome, CasOutcome::Applied { version });
        }
    }
    assert!(store.has_instances(&machine).await.unwrap());
    let listed = collect_pages(300, |p| {
        let store = Arc::clone(store);
        let machine = machine.clone();
        async move { store.list_instances(&machine, &p).await.unwrap() }
    })
    .await;
    let listed_names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(listed_names, names, "every instance once, by name");
    let sample = store
        .load_instance(&instance_key(&machine, "i0500"))
        .await
        .unwrap()
        .expect("written instance is readable");
    let summary = &listed[500];
    assert_eq!(summary.created_at_ms, sample.created_at_ms);
    assert_eq!(summary.machine_version, sample.machine_version);
    assert_eq!(summary.status, sample.status);
}

/// Deleting an instance removes it and its history; the name can then be created afresh.
pub async fn delete_instance_removes_state_and_history(store: &Arc<dyn Store>) {
    let machine = unique_machine("delinst");
    let key = instance_key(&machine, "a");
    let other = instance_key(&machine, "b");
    for k in [&key, &other] {
        assert_eq!(
            cas(store, commit(k, Expect::Absent, 1, true)).await,
            CasOutcome::Applied { version: 1 }
        );
        assert_eq!(
            cas(store, commit(k, Expect::Version(1), 2, true)).await,
            CasOutcome::Applied { version: 2 }
        );
    }
    assert!(store.delete_instance(&key).await.unwrap());
    assert!(!store.delete_instance(&key).await.unwrap(), "deleted once");
    assert_eq!(store.load_instance(&key).await.unwrap(), None);
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    assert!(history.unwrap().items.is_empty());
    assert!(store.has_instances(&machine).await.unwrap(), "b remains");
    let b_history = store
        .list_transitions(&other, &PageRequest::default())
        .await;
    assert_eq!(b_history.unwrap().items.len(), 2, "b keeps its history");

    assert_eq!(
        cas(store, commit(&key, Expect::Version(2), 3, true)).await,
        CasOutcome::Conflict { current: None }
    );
    assert_eq!(
        cas(store, commit(&key, Expect::Absent, 1, true)).await,
        CasOutcome::Applied { version: 1 }
    );
    let history = store.list_transitions(&key, &PageRequest::default()).await;
    assert_eq!(history.unwrap().items, vec![transition_record(1)]);

    assert!(store.delete_instance(&key).await.unwrap());
    assert!(store.delete_instance(&other).await.unwrap());
    assert!(!store.has_instances(&machine).await.unwrap());
    let listed = store
        .list_instances(&machine, &PageRequest::default())
        .await;
    assert!(listed.unwrap().items.is_empty());
}
