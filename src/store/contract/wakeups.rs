//! The wake-up index: it follows commits and deletes, orders by time then key, and pages.
//!
//! Every check places its wake times in a region of its own a few minutes ahead of the wall
//! clock (inside the window a ScyllaDB scan sees), and reads the region by starting after a
//! position just before it, so other checks' entries do not get in the way. Assertions that
//! hold only for an exact index are made only when the suite is told the index is exact.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::Rng;

use super::{instance_key, instance_record, unique_machine, WakeIndex};
use crate::ids::{InstanceKey, MachineName};
use crate::store::{CasOutcome, Commit, EffectState, Expect, Store, Wakeup};

/// How far a check's wake times spread from its region's start.
const REGION_SPAN_MS: i64 = 120_000;

/// The start of a fresh region: one to six minutes from now, at a random millisecond.
fn region_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    let now = i64::try_from(now).expect("clock fits i64");
    now + 60_000 + rand::rng().random_range(0..300_000)
}

/// A position just before `start`, so that paging from it reads the region from its start.
fn before(start: i64, machine: &MachineName) -> Wakeup {
    Wakeup {
        wake_at_ms: start - 1,
        key: instance_key(machine, "before"),
    }
}

/// Writes `key` at `version` with `wake`, expecting it to apply.
async fn set_wake(store: &Arc<dyn Store>, key: &InstanceKey, version: u64, wake: Option<i64>) {
    let outcome = store.commit(wake_commit(key, version, wake)).await;
    assert_eq!(
        outcome.expect("commit succeeds"),
        CasOutcome::Applied { version },
        "{key} to version {version}"
    );
}

fn wake_commit(key: &InstanceKey, version: u64, wake: Option<i64>) -> Commit {
    let mut next = instance_record(version);
    next.effects = EffectState {
        wake_at_ms: wake,
        ..EffectState::default()
    };
    let expect = match version {
        1 => Expect::Absent,
        v => Expect::Version(v - 1),
    };
    Commit {
        key: key.clone(),
        expect,
        next,
        transition: None,
    }
}

/// Every entry from `after` up to `until`, paging by `limit`, checking each page's shape.
async fn collect(
    store: &Arc<dyn Store>,
    after: Wakeup,
    until_ms: i64,
    limit: usize,
) -> Vec<Wakeup> {
    let mut out: Vec<Wakeup> = Vec::new();
    let mut position = after;
    loop {
        let page = store
            .wakeups_after(Some(&position), until_ms, limit)
            .await
            .expect("wake-up scan succeeds");
        assert!(page.len() <= limit, "a page holds at most `limit` entries");
        assert!(
            page.windows(2).all(|w| w[0] < w[1]),
            "entries are in (time, key) order: {page:?}"
        );
        assert!(page
            .iter()
            .all(|w| w > &position && w.wake_at_ms <= until_ms));
        let full = page.len() == limit;
        let Some(last) = page.last().cloned() else {
            return out;
        };
        out.extend(page);
        if !full {
            return out;
        }
        position = last;
    }
}

/// The entries of `machine` between `start` and `until`.
async fn ours(
    store: &Arc<dyn Store>,
    machine: &MachineName,
    start: i64,
    until_ms: i64,
) -> BTreeSet<Wakeup> {
    collect(store, before(start, machine), until_ms, 50)
        .await
        .into_iter()
        .filter(|w| &w.key.machine == machine)
        .collect()
}

fn entry(key: &InstanceKey, wake_at_ms: i64) -> Wakeup {
    Wakeup {
        wake_at_ms,
        key: key.clone(),
    }
}

/// Checks the entries found for one instance against the one its row has.
fn check_entries(found: &BTreeSet<Wakeup>, key: &InstanceKey, wake: Option<i64>, index: WakeIndex) {
    let mine: Vec<&Wakeup> = found.iter().filter(|w| &w.key == key).collect();
    if let Some(w) = wake {
        assert!(
            found.contains(&entry(key, w)),
            "{key} at {w} is indexed: {mine:?}"
        );
    }
    if index == WakeIndex::Exact {
        let expected: Vec<Wakeup> = wake.iter().map(|w| entry(key, *w)).collect();
        let mine: Vec<Wakeup> = mine.into_iter().cloned().collect();
        assert_eq!(mine, expected, "{key}: exactly the row's entry");
    }
}

/// Setting, moving earlier, moving later and clearing the wake time moves the entry with the
/// row; a commit that conflicts leaves row and entry as they were.
pub async fn wake_index_follows_commits(store: &Arc<dyn Store>, index: WakeIndex) {
    let machine = unique_machine("wake");
    let key = instance_key(&machine, "a");
    let start = region_start();
    let until = start + REGION_SPAN_MS;
    let steps = [
        Some(start + 60_000),
        Some(start + 10_000),
        Some(start + 90_000),
        Some(start + 90_000),
        None,
        Some(start + 30_000),
    ];
    for (i, wake) in steps.into_iter().enumerate() {
        let version = i as u64 + 1;
        set_wake(store, &key, version, wake).await;
        let found = ours(store, &machine, start, until).await;
        check_entries(&found, &key, wake, index);
    }
    let current = steps.len() as u64;
    let stale = wake_commit(&key, current, Some(start + 5_000));
    let outcome = store.commit(stale).await.expect("commit succeeds");
    assert_eq!(
        outcome,
        CasOutcome::Conflict {
            current: Some(current)
        }
    );
    let row = store.load_instance(&key).await.unwrap().expect("stored");
    assert_eq!(row.effects.wake_at_ms, Some(start + 30_000));
    let found = ours(store, &machine, start, until).await;
    check_entries(&found, &key, Some(start + 30_000), index);

    let until_first = store
        .wakeups_after(Some(&before(start, &machine)), start + 20_000, 100)
        .await
        .unwrap();
    assert!(
        until_first.iter().all(|w| w.wake_at_ms <= start + 20_000),
        "nothing after `until`"
    );
}

/// Deleting an instance takes its entry with it; a new instance of the name starts afresh.
pub async fn delete_instance_removes_the_wake_entry(store: &Arc<dyn Store>, index: WakeIndex) {
    let machine = unique_machine("wakedel");
    let key = instance_key(&machine, "a");
    let start = region_start();
    let until = start + REGION_SPAN_MS;
    set_wake(store, &key, 1, Some(start + 1_000)).await;
    assert!(store.delete_instance(&key).await.unwrap());
    let found = ours(store, &machine, start, until).await;
    check_entries(&found, &key, None, index);
    set_wake(store, &key, 1, Some(start + 2_000)).await;
    let found = ours(store, &machine, start, until).await;
    check_entries(&found, &key, Some(start + 2_000), index);
}

/// Entries come earliest first, ties by key, at most `limit` at a time, and paging from the
/// last one returned visits each exactly once; `due_wakeups` is the first page of the index.
pub async fn wakeups_page_in_time_then_key_order(store: &Arc<dyn Store>, index: WakeIndex) {
    let machine = unique_machine("wakeorder");
    let start = region_start();
    let until = start + REGION_SPAN_MS;
    let offsets = [
        70_000, 5_000, 110_000, 5_000, 40_000, 0, 90_000, 5_000, 20_000,
    ];
    let mut expected = BTreeSet::new();
    for (i, offset) in offsets.iter().enumerate() {
        let key = instance_key(&machine, &format!("n{}", 8 - i));
        set_wake(store, &key, 1, Some(start + offset)).await;
        expected.insert(entry(&key, start + offset));
    }
    for limit in [1, 2, 3, 100] {
        let found: Vec<Wakeup> = collect(store, before(start, &machine), until, limit)
            .await
            .into_iter()
            .filter(|w| w.key.machine == machine)
            .collect();
        let expected: Vec<Wakeup> = expected.iter().cloned().collect();
        assert_eq!(found, expected, "paging by {limit}");
    }
    let cut = start + 40_000;
    let found = ours(store, &machine, start, cut).await;
    let expected_cut: BTreeSet<Wakeup> = expected
        .iter()
        .filter(|w| w.wake_at_ms <= cut)
        .cloned()
        .collect();
    assert_eq!(found, expected_cut, "only entries at or before `until`");

    let first = store.due_wakeups(until, 3).await.unwrap();
    assert!(first.len() <= 3 && first.windows(2).all(|w| w[0] < w[1]));
    assert!(first.iter().all(|w| w.wake_at_ms <= until));
    if index == WakeIndex::Exact {
        let everything = store.due_wakeups(until, usize::MAX).await.unwrap();
        assert_eq!(
            first,
            everything[..first.len()],
            "the first page of the index"
        );
        assert!(expected.iter().all(|w| everything.contains(w)));
        let page = store.wakeups_after(first.last(), until, 2).await.unwrap();
        assert_eq!(
            page,
            everything[first.len()..(first.len() + 2).min(everything.len())]
        );
    }
    assert!(store.due_wakeups(until, 0).await.unwrap().is_empty());
}

/// Many instances due at the same millisecond are all found, once each, in key order.
pub async fn many_instances_with_the_same_wake_are_each_found_once(store: &Arc<dyn Store>) {
    const INSTANCES: usize = 40;
    let machine = unique_machine("waketie");
    let start = region_start();
    let wake = start + 1_234;
    let keys: Vec<InstanceKey> = (0..INSTANCES)
        .map(|i| instance_key(&machine, &format!("t{i:02}")))
        .collect();
    let tasks: Vec<_> = keys
        .iter()
        .map(|key| {
            let store = Arc::clone(store);
            let c = wake_commit(key, 1, Some(wake));
            tokio::spawn(async move { store.commit(c).await.expect("commit succeeds") })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.expect("writer task"),
            CasOutcome::Applied { version: 1 }
        );
    }
    for limit in [7, 40] {
        let found: Vec<Wakeup> = collect(store, before(start, &machine), wake, limit)
            .await
            .into_iter()
            .filter(|w| w.key.machine == machine)
            .collect();
        let expected: Vec<Wakeup> = keys.iter().map(|k| entry(k, wake)).collect();
        assert_eq!(found, expected, "paging by {limit}");
    }
}
