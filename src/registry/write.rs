//! The write paths: create, event, status change, delete. Each holds the instance's entry for
//! its whole length and answers only after the store made the write durable.

use std::sync::Arc;

use serde_json::{json, Value};

use super::effects::{apply_step, Applied};
use super::entry::Held;
pub(super) use super::records::effects_only_commit;
use super::records::next_commit;
use super::services::{ModuleStep, StepInput};
use super::{CreateRequest, Inner, RegistryError, MAX_COMMIT_ATTEMPTS};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::runtime::{InitInput, Step};
use crate::store::{
    CasOutcome, Commit, EffectState, Expect, InstanceRecord, InstanceStatus, StoreError,
};

/// What a commit leaves for after it is durable: the step's whole effect list (for the
/// listeners and the module's share) and what applying the host's share produced.
#[derive(Debug, Default)]
pub(super) struct AfterCommit {
    pub effects: Vec<Value>,
    pub applied: Applied,
    /// The step ran in a guest that keeps its token: its effects run after the commit.
    pub module: Option<ModuleStep>,
}

/// How an instance write is made: the commit and what follows it, or nothing to write.
pub(super) type Planned = Option<(Commit, AfterCommit)>;

/// How a compare-and-set ended, once any unknown outcome has been settled.
enum Outcome {
    Committed(Arc<InstanceRecord>),
    /// Another write got there first; this is what the store holds now.
    Moved(Option<Arc<InstanceRecord>>),
}

impl Inner {
    /// Creates the instance; `parent` is set when another instance spawns it as a persistent
    /// child, and is kept in its effect state so that its sends to the parent find it.
    pub(super) async fn create(
        self: &Arc<Self>,
        key: &InstanceKey,
        request: CreateRequest,
        parent: Option<InstanceKey>,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let _write = self.inflight.begin()?;
        let code = self.code.get(&key.machine, &request.version).await?;
        let mut held = self.hold(key).await;
        let result = self
            .create_held(key, &mut held, &code, request, parent)
            .await;
        if result.is_err() && held.loaded().is_none() {
            self.retire(key, held);
        } else {
            drop(held);
        }
        let record = result?;
        drop(_write);
        Ok(self.settled_answer(key, record).await)
    }

    async fn create_held(
        self: &Arc<Self>,
        key: &InstanceKey,
        held: &mut Held,
        code: &crate::runtime::MachineCode,
        request: CreateRequest,
        parent: Option<InstanceKey>,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        if self.ensure_loaded(key, held).await?.is_some() {
            return Err(RegistryError::AlreadyExists(key.clone()));
        }
        let args = json!({
            "type": "initialization",
            "machineInstanceName": key.instance.as_str(),
            "context": request.context,
            "authContext": request.auth_context,
        });
        if !self.runtime.allow_write(code, &args).await? {
            return Err(RegistryError::Rejected);
        }
        let input = InitInput {
            machine_instance_name: key.instance.to_string(),
            context: request.context,
            auth_context: request.auth_context,
        };
        let (step, module) = self.module_step(key, code, StepInput::Init(&input)).await?;
        let Step {
            snapshot,
            state,
            context,
            tags,
            done,
            effects,
            token: _,
        } = step;
        let now = now_ms();
        let mut effect_state = EffectState {
            parent,
            ..EffectState::default()
        };
        let applied = apply_step(&mut effect_state, &effects, 1, now);
        let record = InstanceRecord {
            machine_version: request.version,
            desired_machine_version: None,
            status: InstanceStatus::Running,
            version: 1,
            ts_ms: now,
            snapshot,
            state,
            context,
            tags,
            done,
            write_id: uuid::Uuid::new_v4(),
            created_at_ms: now,
            updated_at_ms: now,
            effects: effect_state,
        };
        let commit = Commit {
            key: key.clone(),
            expect: Expect::Absent,
            next: record,
            transition: None,
        };
        let committed = self.commit(held, commit).await;
        let after = AfterCommit {
            effects,
            applied,
            module,
        };
        match self.finish(key, committed, after).await? {
            Outcome::Committed(record) => {
                tracing::debug!(instance = %key, "instance created");
                Ok(record)
            }
            Outcome::Moved(existing) => {
                if let Some(existing) = existing {
                    held.set_loaded(existing);
                }
                Err(RegistryError::AlreadyExists(key.clone()))
            }
        }
    }

    pub(super) async fn send_event(
        self: &Arc<Self>,
        key: &InstanceKey,
        event: &Value,
        auth_context: &Value,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let _write = self.inflight.begin()?;
        self.pay_owed(key).await?;
        let record = self
            .write_existing(key, |current| async move {
                self.event_step(key, &current, event, auth_context, None)
                    .await
            })
            .await?;
        self.extend_window(key);
        drop(_write);
        Ok(self.settled_answer(key, record).await)
    }

    /// The write an event makes, after `allowWrite` accepts it: the transition, with the
    /// step's effects applied in the same commit. With `delivery` (an inter-instance
    /// message's id), a message already received writes nothing, and a new one is recorded
    /// in the same commit, so a retried delivery is applied once.
    pub(super) async fn event_step(
        self: &Arc<Self>,
        key: &InstanceKey,
        current: &InstanceRecord,
        event: &Value,
        auth_context: &Value,
        delivery: Option<&str>,
    ) -> Result<Planned, RegistryError> {
        if delivery.is_some_and(|id| current.effects.has_received(id)) {
            return Ok(None);
        }
        if current.status == InstanceStatus::Paused {
            return Err(RegistryError::Paused(key.clone()));
        }
        let code = self
            .code
            .get(&key.machine, &current.machine_version)
            .await?;
        let args = json!({
            "type": "event",
            "machineInstanceName": key.instance.as_str(),
            "state": current.state,
            "context": current.context,
            "event": event,
            "authContext": auth_context,
        });
        if !self.runtime.allow_write(&code, &args).await? {
            return Err(RegistryError::Rejected);
        }
        let mut effects = current.effects.clone();
        if let Some(id) = delivery {
            effects.record_received(id);
        }
        self.step_with(key, &code, current, effects, event)
            .await
            .map(Some)
    }

    /// The write `event` makes on `current` (no `allowWrite`: callers decide), with the step's
    /// effects applied over `effects`. The step runs on the instance's pinned guest while one
    /// runs for it.
    pub(super) async fn machine_step(
        self: &Arc<Self>,
        key: &InstanceKey,
        current: &InstanceRecord,
        effects: EffectState,
        event: &Value,
    ) -> Result<(Commit, AfterCommit), RegistryError> {
        if current.status == InstanceStatus::Paused {
            return Err(RegistryError::Paused(key.clone()));
        }
        let code = self
            .code
            .get(&key.machine, &current.machine_version)
            .await?;
        self.step_with(key, &code, current, effects, event).await
    }

    /// [`Inner::machine_step`] once the caller has checked the status and holds the code of
    /// `current`'s machine version.
    async fn step_with(
        self: &Arc<Self>,
        key: &InstanceKey,
        code: &crate::runtime::MachineCode,
        current: &InstanceRecord,
        effects: EffectState,
        event: &Value,
    ) -> Result<(Commit, AfterCommit), RegistryError> {
        let input = StepInput::Transition {
            snapshot: &current.snapshot,
            event,
        };
        let (step, module) = self.module_step(key, code, input).await?;
        let (commit, mut after) = next_commit(key, current, effects, step, event);
        after.module = module;
        Ok((commit, after))
    }

    pub(super) async fn set_status(
        self: &Arc<Self>,
        key: &InstanceKey,
        status: InstanceStatus,
    ) -> Result<(), RegistryError> {
        let _write = self.inflight.begin()?;
        self.write_existing(key, |current| async move {
            if current.status == status {
                return Ok(None);
            }
            let next = InstanceRecord {
                status,
                version: current.version + 1,
                write_id: uuid::Uuid::new_v4(),
                updated_at_ms: now_ms(),
                ..(*current).clone()
            };
            let commit = Commit {
                key: key.clone(),
                expect: Expect::Version(current.version),
                next,
                transition: None,
            };
            Ok(Some((commit, AfterCommit::default())))
        })
        .await?;
        Ok(())
    }

    /// Holds an existing instance and commits what `attempt` makes of its current record,
    /// running `attempt` again on the newer record after each conflict (at most
    /// [`MAX_COMMIT_ATTEMPTS`] times). `attempt` answers `None` when nothing needs writing.
    pub(super) async fn write_existing<F, Fut>(
        self: &Arc<Self>,
        key: &InstanceKey,
        mut attempt: F,
    ) -> Result<Arc<InstanceRecord>, RegistryError>
    where
        F: FnMut(Arc<InstanceRecord>) -> Fut,
        Fut: std::future::Future<Output = Result<Planned, RegistryError>>,
    {
        let (mut held, mut current) = self.hold_existing(key).await?;
        for n in 1..=MAX_COMMIT_ATTEMPTS {
            let Some((commit, after)) = attempt(current.clone()).await? else {
                return Ok(current);
            };
            let committed = self.commit(&mut held, commit).await;
            match self.finish(key, committed, after).await? {
                Outcome::Committed(record) => {
                    tracing::debug!(instance = %key, version = record.version, attempt = n, "instance written");
                    return Ok(record);
                }
                Outcome::Moved(Some(newer)) => {
                    tracing::debug!(instance = %key, attempt = n, "instance moved; writing again");
                    crate::metrics::events::conflict_met();
                    current = newer;
                    held.set_loaded(current.clone());
                }
                Outcome::Moved(None) => {
                    self.retire(key, held);
                    return Err(RegistryError::InstanceNotFound(key.clone()));
                }
            }
        }
        Err(RegistryError::Contended {
            key: key.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    pub(super) async fn delete(self: &Arc<Self>, key: &InstanceKey) -> Result<(), RegistryError> {
        let _write = self.inflight.begin()?;
        let held = self.hold(key).await;
        let deleted = self.store.delete_instance(key).await;
        if matches!(deleted, Ok(true)) {
            // Still holding the instance: nothing of this incarnation's services may reach a
            // new instance created with the same name afterwards.
            self.end_deleted(key).await;
        }
        self.retire(key, held);
        if !deleted? {
            return Err(RegistryError::InstanceNotFound(key.clone()));
        }
        tracing::debug!(instance = %key, "instance deleted");
        for listener in self.listeners.read().iter() {
            listener.on_delete(key);
        }
        Ok(())
    }

    /// What follows a commit attempt: after a durable write, [`Inner::after_commit`] and the
    /// module's share of the effects; otherwise the step's token is discarded.
    async fn finish(
        self: &Arc<Self>,
        key: &InstanceKey,
        committed: Result<Outcome, RegistryError>,
        mut after: AfterCommit,
    ) -> Result<Outcome, RegistryError> {
        let module = after.module.take();
        match (&committed, module) {
            (Ok(Outcome::Committed(record)), module) => {
                self.after_commit(key, record, &after);
                if let Some(module) = module {
                    let started = after
                        .effects
                        .iter()
                        .filter(|e| e["type"] == "start")
                        .count();
                    self.run_module_effects(key, module, started, record.created_at_ms)
                        .await;
                }
            }
            (_, Some(module)) => self.discard_module_step(module).await,
            (_, None) => {}
        }
        committed
    }

    /// One compare-and-set. An unknown outcome is settled by a linearizable read: the write
    /// happened exactly when the stored record carries this write's id. On any other store
    /// error the entry goes cold, so the next request starts from what the store holds.
    async fn commit(&self, held: &mut Held, commit: Commit) -> Result<Outcome, RegistryError> {
        let key = commit.key.clone();
        let write_id = commit.next.write_id;
        let next = Arc::new(commit.next.clone());
        let stored = if self.services.take_forced_conflict() {
            tracing::debug!(instance = %key, "conflict forced by the test hook");
            Ok(CasOutcome::Conflict { current: None })
        } else {
            self.store.commit(commit).await
        };
        let settled = match stored {
            Ok(CasOutcome::Applied { .. }) => Ok(Outcome::Committed(next)),
            Ok(CasOutcome::Conflict { .. }) => self
                .store
                .load_instance_linearizable(&key)
                .await
                .map(|stored| Outcome::Moved(stored.map(Arc::new))),
            Err(StoreError::Unknown) => match self.store.load_instance_linearizable(&key).await {
                Ok(Some(stored)) if stored.write_id == write_id => {
                    Ok(Outcome::Committed(Arc::new(stored)))
                }
                Ok(other) => Ok(Outcome::Moved(other.map(Arc::new))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match settled {
            Ok(Outcome::Committed(record)) => {
                held.set_loaded(record.clone());
                Ok(Outcome::Committed(record))
            }
            Ok(moved) => Ok(moved),
            Err(e) => {
                held.set_cold();
                Err(e.into())
            }
        }
    }

    /// Everything that follows a durable write, in order, while the instance is still held
    /// (so the next write of the instance waits): the machine's `log` effects are written,
    /// then every [`super::CommitListener`] hears of the write with the step's effect list
    /// (the timer scheduler arms from the record's `wake_at_ms`, the fan-out pushes).
    ///
    /// The module's share of the step (`run_effects` on the pinned guest) runs right after
    /// this, from [`Inner::finish`]. Nothing here may fail the write: it is already durable.
    pub(super) fn after_commit(
        &self,
        key: &InstanceKey,
        record: &Arc<InstanceRecord>,
        after: &AfterCommit,
    ) {
        for (label, value) in &after.applied.logs {
            tracing::info!(
                machine = %key.machine,
                instance = %key.instance,
                label = label.as_deref().unwrap_or(""),
                value = %value,
                "machine log"
            );
        }
        if after.applied.malformed > 0 {
            tracing::debug!(instance = %key, skipped = after.applied.malformed, "malformed effects skipped");
        }
        crate::metrics::timers::armed(after.applied.timers_armed);
        for listener in self.listeners.read().iter() {
            listener.on_commit(key, record, &after.effects);
        }
    }
}
