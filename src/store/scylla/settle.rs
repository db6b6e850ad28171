//! Deciding what became of a commit whose reply was lost.
//!
//! After a CAS write timeout, a broken connection or a client-side timeout, the transaction
//! may or may not have been applied. The store then reads the instance at the serial
//! consistency level (which first completes any Paxos round still in flight on the partition)
//! and compares the row's `write_id` with the commit's own. [`judge`] is that comparison,
//! kept free of I/O so every case is tested directly.

use crate::store::{Commit, Expect, InstanceRecord};

/// What a linearizable read of the instance says about one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The row carries the commit's write id: it was applied.
    Applied,
    /// The commit was not applied: another write holds the version it meant to write, or the
    /// instance is gone, or was replaced by a later instance of the same name. `current` is
    /// the stored version, if any.
    Conflict(Option<u64>),
    /// The row is exactly what the commit expected: it has not landed, and repeating it
    /// (same write id) is safe, because at most one transaction can move the row from the
    /// expected state.
    ExpectationHolds,
    /// The row has moved past the commit's version with another write on top; whether the
    /// commit was one of the versions in between is told only by the history row of its
    /// version.
    MovedPast { current: u64 },
}

/// Compares the row found by a linearizable read with the commit.
pub(super) fn judge(c: &Commit, row: Option<&InstanceRecord>) -> Verdict {
    let Some(row) = row else {
        return match c.expect {
            Expect::Absent => Verdict::ExpectationHolds,
            Expect::Version(_) => Verdict::Conflict(None),
        };
    };
    if row.write_id == c.next.write_id {
        return Verdict::Applied;
    }
    if row.created_at_ms != c.next.created_at_ms {
        // Another incarnation of the instance: ours, applied or not, has been deleted.
        return Verdict::Conflict(Some(row.version));
    }
    if c.expect == Expect::Version(row.version) {
        return Verdict::ExpectationHolds;
    }
    if row.version > c.next.version {
        return Verdict::MovedPast {
            current: row.version,
        };
    }
    Verdict::Conflict(Some(row.version))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
    use crate::store::InstanceStatus;

    fn record(version: u64, write_id: u128, created_at_ms: i64) -> InstanceRecord {
        InstanceRecord {
            machine_version: MachineVersionId::parse("ver_a").unwrap(),
            desired_machine_version: None,
            status: InstanceStatus::Running,
            version,
            ts_ms: 1,
            snapshot: "{}".into(),
            state: json!("idle"),
            context: json!({}),
            tags: vec![],
            done: false,
            write_id: uuid::Uuid::from_u128(write_id),
            created_at_ms,
            updated_at_ms: 1,
            effects: Default::default(),
        }
    }

    fn commit(expect: Expect, next_version: u64) -> Commit {
        Commit {
            key: InstanceKey::new(
                MachineName::parse("m").unwrap(),
                InstanceName::parse("i").unwrap(),
            ),
            expect,
            next: record(next_version, 42, 1000),
            transition: None,
        }
    }

    #[test]
    fn our_write_id_means_applied() {
        let c = commit(Expect::Version(4), 5);
        assert_eq!(judge(&c, Some(&record(5, 42, 1000))), Verdict::Applied);
        let create = commit(Expect::Absent, 1);
        assert_eq!(judge(&create, Some(&record(1, 42, 1000))), Verdict::Applied);
    }

    #[test]
    fn another_write_at_our_version_is_a_conflict() {
        let c = commit(Expect::Version(4), 5);
        assert_eq!(
            judge(&c, Some(&record(5, 7, 1000))),
            Verdict::Conflict(Some(5))
        );
        let create = commit(Expect::Absent, 1);
        assert_eq!(
            judge(&create, Some(&record(1, 7, 1000))),
            Verdict::Conflict(Some(1))
        );
    }

    #[test]
    fn unchanged_row_means_not_landed() {
        let c = commit(Expect::Version(4), 5);
        assert_eq!(
            judge(&c, Some(&record(4, 7, 1000))),
            Verdict::ExpectationHolds
        );
        assert_eq!(
            judge(&commit(Expect::Absent, 1), None),
            Verdict::ExpectationHolds
        );
    }

    #[test]
    fn missing_or_replaced_instance_is_a_conflict() {
        let c = commit(Expect::Version(4), 5);
        assert_eq!(judge(&c, None), Verdict::Conflict(None));
        assert_eq!(
            judge(&c, Some(&record(9, 7, 2000))),
            Verdict::Conflict(Some(9))
        );
    }

    #[test]
    fn later_writes_on_top_need_the_history() {
        let c = commit(Expect::Version(4), 5);
        assert_eq!(
            judge(&c, Some(&record(7, 7, 1000))),
            Verdict::MovedPast { current: 7 }
        );
    }
}
