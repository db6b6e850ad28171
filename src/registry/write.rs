//! The write paths: create, event, status change, delete. Each holds the instance's entry for
//! its whole length and answers only after the store made the write durable.

use std::sync::Arc;

use serde_json::{json, Value};

use super::entry::Held;
use super::{CreateRequest, Inner, RegistryError, MAX_COMMIT_ATTEMPTS};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::runtime::{InitInput, Step};
use crate::store::{
    CasOutcome, Commit, EffectState, Expect, InstanceRecord, InstanceStatus, StoreError,
    TransitionRecord,
};

/// How a compare-and-set ended, once any unknown outcome has been settled.
enum Outcome {
    Committed(Arc<InstanceRecord>),
    /// Another write got there first; this is what the store holds now.
    Moved(Option<Arc<InstanceRecord>>),
}

impl Inner {
    pub(super) async fn create(
        self: &Arc<Self>,
        key: &InstanceKey,
        request: CreateRequest,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let _write = self.inflight.begin()?;
        let code = self.code.get(&key.machine, &request.version).await?;
        let mut held = self.hold(key).await;
        let result = self.create_held(key, &mut held, &code, request).await;
        if result.is_err() && held.loaded().is_none() {
            self.retire(key, held);
        }
        result
    }

    async fn create_held(
        &self,
        key: &InstanceKey,
        held: &mut Held,
        code: &crate::runtime::MachineCode,
        request: CreateRequest,
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
        let Step {
            snapshot,
            state,
            context,
            tags,
            done,
            effects,
            token: _,
        } = self.runtime.init(code, &input).await?;
        let now = now_ms();
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
            effects: EffectState::default(),
        };
        let commit = Commit {
            key: key.clone(),
            expect: Expect::Absent,
            next: record,
            transition: None,
        };
        match self.commit(held, commit).await? {
            Outcome::Committed(record) => {
                tracing::debug!(instance = %key, "instance created");
                self.notify(key, &record, &effects);
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
        self.write_existing(key, |current| async move {
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
            let step = self
                .runtime
                .transition(&code, &current.snapshot, event)
                .await?;
            Ok(Some(next_commit(key, &current, step, event)))
        })
        .await
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
            Ok(Some((commit, Vec::new())))
        })
        .await?;
        Ok(())
    }

    /// Holds an existing instance and commits what `attempt` makes of its current record,
    /// running `attempt` again on the newer record after each conflict (at most
    /// [`MAX_COMMIT_ATTEMPTS`] times). `attempt` answers `None` when nothing needs writing.
    async fn write_existing<F, Fut>(
        self: &Arc<Self>,
        key: &InstanceKey,
        mut attempt: F,
    ) -> Result<Arc<InstanceRecord>, RegistryError>
    where
        F: FnMut(Arc<InstanceRecord>) -> Fut,
        Fut: std::future::Future<Output = Result<Option<(Commit, Vec<Value>)>, RegistryError>>,
    {
        let (mut held, mut current) = self.hold_existing(key).await?;
        for n in 1..=MAX_COMMIT_ATTEMPTS {
            let Some((commit, effects)) = attempt(current.clone()).await? else {
                return Ok(current);
            };
            match self.commit(&mut held, commit).await? {
                Outcome::Committed(record) => {
                    tracing::debug!(instance = %key, version = record.version, attempt = n, "instance written");
                    self.notify(key, &record, &effects);
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

    /// One compare-and-set. An unknown outcome is settled by a linearizable read: the write
    /// happened exactly when the stored record carries this write's id. On any other store
    /// error the entry goes cold, so the next request starts from what the store holds.
    async fn commit(&self, held: &mut Held, commit: Commit) -> Result<Outcome, RegistryError> {
        let key = commit.key.clone();
        let write_id = commit.next.write_id;
        let next = Arc::new(commit.next.clone());
        let settled = match self.store.commit(commit).await {
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

    fn notify(&self, key: &InstanceKey, record: &Arc<InstanceRecord>, effects: &[Value]) {
        for listener in self.listeners.read().iter() {
            listener.on_commit(key, record, effects);
        }
    }
}

/// The record and history entry an accepted event produces. `ts` is strictly increasing per
/// instance even if the wall clock steps back.
fn next_commit(
    key: &InstanceKey,
    current: &InstanceRecord,
    step: Step,
    event: &Value,
) -> (Commit, Vec<Value>) {
    let now = now_ms();
    let version = current.version + 1;
    let next = InstanceRecord {
        machine_version: current.machine_version.clone(),
        desired_machine_version: current.desired_machine_version.clone(),
        status: current.status,
        version,
        ts_ms: now.max(current.ts_ms + 1),
        snapshot: step.snapshot,
        state: step.state.clone(),
        context: step.context,
        tags: step.tags,
        done: step.done,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: current.created_at_ms,
        updated_at_ms: now,
        // Timers and outbox are kept as they were; the step's effects go to the listeners.
        effects: current.effects.clone(),
    };
    let commit = Commit {
        key: key.clone(),
        expect: Expect::Version(current.version),
        next,
        transition: Some(TransitionRecord {
            version,
            created_at_ms: now,
            event: event.clone(),
            state: step.state,
        }),
    };
    (commit, step.effects)
}
