//! The behaviour every [`Store`] backend must show, as one suite run against each of them.
//!
//! [`run_all`] runs every check; each check is also public so a backend's tests can name the
//! one that fails. Checks panic (with the rule that broke) instead of returning errors, like
//! assertions in a test. Every check creates its own machines, instances and keys under names
//! that are unique per run, so the suite can run against a shared, non-empty cluster: listings
//! of server-wide tables (machines, keys) are checked for order and for containing exactly what
//! this run wrote, never for being equal to it.
//!
//! Backends differ in one declared way, [`WakeIndex`]: whether their wake-up index is exact or
//! may keep stale entries. Checks of the index always require that no entry is missing, and
//! require the absence of stale ones only from an exact index.

use std::sync::Arc;

use super::{InstanceRecord, InstanceStatus, Page, PageRequest, Store, TransitionRecord};
use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};

mod catalog;
mod effects;
mod instances;
mod wakeups;

pub use catalog::{
    bundles_are_content_addressed, invalid_cursors_are_refused, keys_round_trip_and_page_by_id,
    machines_round_trip_and_page_by_name, meta_values_round_trip,
    uploads_round_trip_and_delete_idempotently, versions_list_newest_first_and_go_with_machine,
};
pub use effects::{
    effect_only_writes_move_the_version_but_not_the_history, effect_state_round_trips_exactly,
};
pub use instances::{
    cas_checks_the_stored_version, commits_with_a_wrong_next_version_are_refused,
    concurrent_cas_on_one_key_applies_once, create_then_duplicate_conflicts,
    delete_instance_removes_state_and_history, independent_keys_all_apply_concurrently,
    reads_see_acknowledged_writes, transitions_are_written_iff_applied_newest_first,
    unknown_keys_read_as_none,
};
pub use wakeups::{
    delete_instance_removes_the_wake_entry, many_instances_with_the_same_wake_are_each_found_once,
    wake_index_follows_commits, wakeups_page_in_time_then_key_order,
};

/// What a backend promises about its wake-up index, beyond never missing an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeIndex {
    /// One entry per instance whose row has a wake time, and nothing else (memory, embedded).
    Exact,
    /// May also hold entries the rows have moved away from, and entries of deleted instances
    /// (ScyllaDB, whose index is written before the row and expires by TTL).
    MayKeepStale,
}

/// Runs every check of the contract, one after the other.
pub async fn run_all(store: Arc<dyn Store>, index: WakeIndex) {
    unknown_keys_read_as_none(&store).await;
    create_then_duplicate_conflicts(&store).await;
    cas_checks_the_stored_version(&store).await;
    commits_with_a_wrong_next_version_are_refused(&store).await;
    transitions_are_written_iff_applied_newest_first(&store).await;
    concurrent_cas_on_one_key_applies_once(&store).await;
    reads_see_acknowledged_writes(&store).await;
    independent_keys_all_apply_concurrently(&store).await;
    delete_instance_removes_state_and_history(&store).await;
    machines_round_trip_and_page_by_name(&store).await;
    versions_list_newest_first_and_go_with_machine(&store).await;
    uploads_round_trip_and_delete_idempotently(&store).await;
    keys_round_trip_and_page_by_id(&store).await;
    bundles_are_content_addressed(&store).await;
    meta_values_round_trip(&store).await;
    invalid_cursors_are_refused(&store).await;
    effect_state_round_trips_exactly(&store).await;
    effect_only_writes_move_the_version_but_not_the_history(&store).await;
    wake_index_follows_commits(&store, index).await;
    delete_instance_removes_the_wake_entry(&store, index).await;
    wakeups_page_in_time_then_key_order(&store, index).await;
    many_instances_with_the_same_wake_are_each_found_once(&store).await;
}

/// A machine name no other run uses: `ct-<tag>-<12 random hex digits>`.
fn unique_machine(tag: &str) -> MachineName {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    MachineName::parse(format!("ct-{tag}-{}", &suffix[..12])).expect("generated name is valid")
}

fn instance_key(machine: &MachineName, instance: &str) -> InstanceKey {
    InstanceKey::new(
        machine.clone(),
        InstanceName::parse(instance).expect("test instance name is valid"),
    )
}

/// An instance record at `version` whose fields all differ between versions, so a read can
/// tell exactly which write it sees.
fn instance_record(version: u64) -> InstanceRecord {
    let n = i64::try_from(version).expect("test versions are small");
    InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: version.is_multiple_of(2).then(MachineVersionId::generate),
        status: if version.is_multiple_of(3) {
            InstanceStatus::Paused
        } else {
            InstanceStatus::Running
        },
        version,
        ts_ms: 1_700_000_000_000 + n,
        snapshot: format!(r#"{{"value":"s{version}","context":{{"n":{version}}}}}"#),
        state: serde_json::json!({ "s": format!("s{version}") }),
        context: serde_json::json!({ "n": version, "public": { "label": "ünï" } }),
        tags: vec![format!("t{version}")],
        done: version.is_multiple_of(5),
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000 + n,
        effects: Default::default(),
    }
}

fn transition_record(version: u64) -> TransitionRecord {
    let n = i64::try_from(version).expect("test versions are small");
    TransitionRecord {
        version,
        created_at_ms: 1_700_000_000_000 + n,
        event: serde_json::json!({ "type": "next", "n": version }),
        state: serde_json::json!({ "s": format!("s{version}") }),
    }
}

fn page(limit: usize, cursor: Option<String>) -> PageRequest {
    PageRequest { cursor, limit }
}

/// Follows cursors from the first page to the last, checking that every page but the last is
/// full and that only the last one has no cursor.
async fn collect_pages<T, F, Fut>(limit: usize, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let got = fetch(page(limit, cursor)).await;
        assert!(
            got.items.len() <= limit,
            "a page holds at most `limit` items"
        );
        let last = got.cursor.is_none();
        if !last {
            assert_eq!(got.items.len(), limit, "only the last page may be short");
        }
        items.extend(got.items);
        if last {
            return items;
        }
        cursor = got.cursor;
    }
}
