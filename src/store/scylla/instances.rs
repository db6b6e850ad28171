//! Instance rows: load, commit (one lightweight transaction per write) and delete.
//!
//! The path of one commit: for a create, the name index entry is written first (so a machine
//! never looks empty while it has an instance), and when the record has a wake time its
//! wake-up entry is written first too (so the index never misses it; both at once); then one
//! transaction, `INSERT … IF NOT EXISTS` or `UPDATE … IF version = ?`; then, if it applied,
//! the history row is appended. When the transaction's reply is lost, the outcome is settled
//! before answering (see [`super::settle`]).

use std::time::Duration;

use tracing::{debug, warn};

use super::errors::{classify, from_execution, malformed, Failure};
use super::lwt::{self, LwtReply};
use super::rows::{effects_text, json_text, status_text, to_bigint, InstanceRow};
use super::settle::{judge, Verdict};
use super::ScyllaStore;
use crate::ids::InstanceKey;
use crate::store::{CasOutcome, Commit, Expect, InstanceRecord, StoreError};

/// How often `delete_instance` re-reads and retries when writes keep moving the version.
const DELETE_ATTEMPTS: usize = 5;

/// Attempts of the settling read; after a broken connection the pool needs a moment to
/// reconnect, so an unavailable read is retried with a growing pause.
const SETTLE_READ_ATTEMPTS: u32 = 4;
const SETTLE_READ_FIRST_PAUSE: Duration = Duration::from_millis(100);

pub(super) fn key_values(key: &InstanceKey) -> (&str, &str) {
    (key.machine.as_str(), key.instance.as_str())
}

/// The bigint versions of a commit: the one it writes and the one it expects, if any.
/// Refuses a commit whose record does not carry the version its expectation produces.
fn commit_versions(c: &Commit) -> Result<(i64, Option<i64>), StoreError> {
    let next = c.validate()?;
    let expected = match c.expect {
        Expect::Absent => None,
        Expect::Version(n) => Some(to_bigint("version", n)?),
    };
    Ok((to_bigint("version", next)?, expected))
}

impl ScyllaStore {
    /// Reads the instance row; `linearizable` reads at the serial consistency level.
    pub(super) async fn load_instance_at(
        &self,
        key: &InstanceKey,
        linearizable: bool,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let (what, statement) = if linearizable {
            ("instance_select_serial", &self.st.instance_select_serial)
        } else {
            ("instance_select", &self.st.instance_select)
        };
        let result = self
            .session
            .execute_unpaged(statement, key_values(key))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        let row = rows
            .maybe_first_row::<InstanceRow>()
            .map_err(|e| malformed(what, e))?;
        row.map(|r| r.into_record(key)).transpose()
    }

    pub(super) async fn commit_instance(&self, c: Commit) -> Result<CasOutcome, StoreError> {
        self.ensure_open()?;
        let versions = commit_versions(&c)?;
        let intent = self.write_wakeup_intent(&c.key, c.next.effects.wake_at_ms);
        if c.expect == Expect::Absent {
            tokio::try_join!(self.insert_name(&c.key), intent)?;
        } else {
            intent.await?;
        }
        let outcome = match self.attempt(&c, versions).await {
            Ok(reply) => self.outcome_of(&c, reply).await?,
            Err(Failure::Uncertain(cause)) => {
                debug!(instance = %c.key, version = c.next.version, %cause, "settling uncertain commit");
                self.settle(&c, versions).await?
            }
            Err(failure) => return Err(failure.into_transaction_error()),
        };
        if let (CasOutcome::Applied { .. }, Some(t)) = (&outcome, &c.transition) {
            self.append_transition(&c, t, versions.0).await;
        }
        Ok(outcome)
    }

    /// Runs the commit's transaction once.
    async fn attempt(
        &self,
        c: &Commit,
        (version, expected): (i64, Option<i64>),
    ) -> Result<LwtReply, Failure> {
        let n = &c.next;
        let effects = effects_text(&n.effects).map_err(|e| Failure::Refused(e.to_string()))?;
        let effects = effects.as_deref();
        let (machine, instance) = key_values(&c.key);
        let desired = n.desired_machine_version.as_ref().map(|v| v.as_str());
        let (state, context) = (json_text(&n.state), json_text(&n.context));
        let (what, result) = match expected {
            None => (
                "instance_insert",
                self.session
                    .execute_unpaged(
                        &self.st.instance_insert,
                        (
                            machine,
                            instance,
                            version,
                            n.machine_version.as_str(),
                            desired,
                            status_text(n.status),
                            n.ts_ms,
                            n.snapshot.as_str(),
                            state,
                            context,
                            &n.tags,
                            n.done,
                            n.write_id,
                            n.created_at_ms,
                            n.updated_at_ms,
                            effects,
                        ),
                    )
                    .await,
            ),
            Some(expected) => (
                "instance_update",
                self.session
                    .execute_unpaged(
                        &self.st.instance_update,
                        (
                            version,
                            n.machine_version.as_str(),
                            desired,
                            status_text(n.status),
                            n.ts_ms,
                            n.snapshot.as_str(),
                            state,
                            context,
                            &n.tags,
                            n.done,
                            n.write_id,
                            n.updated_at_ms,
                            effects,
                            machine,
                            instance,
                            expected,
                        ),
                    )
                    .await,
            ),
        };
        let result = result.map_err(|e| classify(what, &e))?;
        // The transaction ran; a reply we cannot read leaves its outcome open.
        lwt::decode(what, result).map_err(|e| Failure::Uncertain(e.to_string()))
    }

    /// The outcome of a transaction whose reply arrived.
    async fn outcome_of(&self, c: &Commit, reply: LwtReply) -> Result<CasOutcome, StoreError> {
        if reply.applied {
            return Ok(CasOutcome::Applied {
                version: c.next.version,
            });
        }
        let current = match reply.version {
            Some(v) => Some(u64::try_from(v).map_err(|_| {
                StoreError::Corrupt(format!("instance {}: negative version {v}", c.key))
            })?),
            // The server left the current version out: ask for it.
            None => self
                .load_instance_at(&c.key, true)
                .await?
                .map(|r| r.version),
        };
        Ok(CasOutcome::Conflict { current })
    }

    /// Decides an uncertain commit by linearizable reads, repeating the transaction (same
    /// write id) once if the row shows it has not landed.
    ///
    /// Returns [`StoreError::Unknown`] when the settling read fails, when the repeat is itself
    /// uncertain and the row still shows nothing landed, or when later writes are on top of
    /// the commit's version and its history row does not tell who wrote that version.
    async fn settle(
        &self,
        c: &Commit,
        versions: (i64, Option<i64>),
    ) -> Result<CasOutcome, StoreError> {
        let mut repeated = false;
        loop {
            let row = self.settling_read(&c.key).await?;
            match judge(c, row.as_ref()) {
                Verdict::Applied => {
                    return Ok(CasOutcome::Applied {
                        version: c.next.version,
                    })
                }
                Verdict::Conflict(current) => return Ok(CasOutcome::Conflict { current }),
                Verdict::MovedPast { current } => {
                    return self.settle_from_history(c, current).await;
                }
                Verdict::ExpectationHolds if !repeated => {
                    repeated = true;
                    match self.attempt(c, versions).await {
                        Ok(reply) if reply.applied => {
                            return Ok(CasOutcome::Applied {
                                version: c.next.version,
                            })
                        }
                        // Something else moved the row, or the repeat's own outcome is open:
                        // the next read tells.
                        Ok(_) | Err(Failure::Uncertain(_)) => {}
                        Err(failure) => return Err(failure.into_transaction_error()),
                    }
                }
                Verdict::ExpectationHolds => return Err(StoreError::Unknown),
            }
        }
    }

    /// A linearizable read of the instance; [`StoreError::Unknown`] if it cannot be done.
    async fn settling_read(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        let mut pause = SETTLE_READ_FIRST_PAUSE;
        for attempt in 1..=SETTLE_READ_ATTEMPTS {
            match self.load_instance_at(key, true).await {
                Ok(row) => return Ok(row),
                Err(StoreError::Unavailable(cause)) if attempt < SETTLE_READ_ATTEMPTS => {
                    debug!(instance = %key, attempt, %cause, "settling read unavailable; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => {
                    warn!(instance = %key, error = %e, "settling read failed; commit outcome unknown");
                    return Err(StoreError::Unknown);
                }
            }
        }
        Err(StoreError::Unknown)
    }

    /// The commit's version is buried under later writes; its history row names its writer.
    async fn settle_from_history(
        &self,
        c: &Commit,
        current: u64,
    ) -> Result<CasOutcome, StoreError> {
        match self.transition_write_id(c).await {
            Ok(Some(id)) if id == c.next.write_id => Ok(CasOutcome::Applied {
                version: c.next.version,
            }),
            Ok(Some(_)) => Ok(CasOutcome::Conflict {
                current: Some(current),
            }),
            Ok(None) => {
                warn!(instance = %c.key, version = c.next.version, "no history row to settle a buried commit");
                Err(StoreError::Unknown)
            }
            Err(e) => {
                warn!(instance = %c.key, error = %e, "history read failed; commit outcome unknown");
                Err(StoreError::Unknown)
            }
        }
    }

    /// Deletes the instance at the version last read, then its history and name entry. Its
    /// wake-up entries stay until they expire (stale entries are allowed).
    pub(super) async fn delete_instance_row(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        self.ensure_open()?;
        for _ in 0..DELETE_ATTEMPTS {
            let Some(row) = self.load_instance_at(key, true).await? else {
                return Ok(false);
            };
            let version = to_bigint("version", row.version)?;
            let (machine, instance) = key_values(key);
            let deleted = match self
                .session
                .execute_unpaged(&self.st.instance_delete, (machine, instance, version))
                .await
            {
                Ok(result) => lwt::decode("instance_delete", result)?.applied,
                Err(e) => match classify("instance_delete", &e) {
                    // Gone or replaced since the read: our delete landed, or someone else's
                    // did; either way this incarnation is deleted.
                    Failure::Uncertain(_) => self
                        .load_instance_at(key, true)
                        .await
                        .map_err(|_| StoreError::Unknown)?
                        .is_none_or(|now| now.created_at_ms != row.created_at_ms),
                    failure => return Err(failure.into_transaction_error()),
                },
            };
            if deleted {
                self.delete_history(key, row.created_at_ms, row.version)
                    .await?;
                self.delete_name(key).await?;
                self.intents.forget(key);
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(format!(
            "instance {key} kept changing while being deleted"
        )))
    }
}
