//! Steps on the pinned guest, `run_effects` after the commit, and carrying out the outbox.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::{Runner, Work};
use crate::ids::InstanceKey;
use crate::metrics::services as metrics;
use crate::registry::{Inner, RegistryError};
use crate::runtime::{EffectError, HostOp, InitInput, MachineCode, Outbox, Pinned, Step};

/// A step that ran on a guest which keeps its token: the commit decides whether the token's
/// effects run (`run_effects`) or are dropped (`discard`).
#[derive(Debug)]
pub(in crate::registry) struct ModuleStep {
    token: Option<u64>,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// The instance's runner's guest (its `stepping` counts this step).
    Runner(Arc<Runner>),
    /// A guest pinned by this step.
    Fresh(Pinned),
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}

/// Which step to run.
pub(in crate::registry) enum StepInput<'a> {
    Init(&'a InitInput),
    Transition { snapshot: &'a str, event: &'a Value },
}

impl Inner {
    /// Runs a step for `key`: on its runner's guest while one runs for it, else on a pooled
    /// guest that stays pinned when the step keeps a token.
    pub(in crate::registry) async fn module_step(
        self: &Arc<Self>,
        key: &InstanceKey,
        code: &MachineCode,
        input: StepInput<'_>,
    ) -> Result<(Step, Option<ModuleStep>), RegistryError> {
        if let Some(runner) = self.services.live(key) {
            runner.st.lock().stepping += 1;
            let mut pin = runner.pin.lock().await;
            if let Some(pinned) = pin.as_mut().filter(|p| !p.is_lost()) {
                let result = match input {
                    StepInput::Init(i) => pinned.init(i).await,
                    StepInput::Transition { snapshot, event } => {
                        pinned.transition(snapshot, event).await
                    }
                };
                let lost = pinned.is_lost();
                drop(pin);
                match result {
                    Ok(step) => {
                        let module = ModuleStep {
                            token: step.token,
                            source: Source::Runner(runner),
                        };
                        return Ok((step, Some(module)));
                    }
                    Err(e) => {
                        runner.st.lock().stepping -= 1;
                        if !lost {
                            return Err(e.into());
                        }
                        tracing::warn!(instance = %key, error = %e, "pinned guest lost; its services are interrupted");
                        self.close_runner(key, &runner, false).await;
                    }
                }
            } else {
                drop(pin);
                runner.st.lock().stepping -= 1;
            }
        }
        let (step, pinned) = match input {
            StepInput::Init(i) => self.runtime.init_pinned(code, i).await?,
            StepInput::Transition { snapshot, event } => {
                self.runtime
                    .transition_pinned(code, snapshot, event)
                    .await?
            }
        };
        let module = pinned.map(|p| ModuleStep {
            token: step.token,
            source: Source::Fresh(p),
        });
        Ok((step, module))
    }

    /// After the commit of a step that ran in a module guest: `run_effects` for its token,
    /// then what the outbox asks for. `started` is how many services the step started;
    /// `born_ms` is the committed record's `created_at_ms` (which incarnation runs them).
    pub(in crate::registry) async fn run_module_effects(
        self: &Arc<Self>,
        key: &InstanceKey,
        module: ModuleStep,
        started: usize,
        born_ms: i64,
    ) {
        let runner = match module.source {
            Source::Runner(runner) => runner,
            Source::Fresh(pinned) => {
                let runner = Runner::new(pinned, self.services.window(), born_ms);
                runner.st.lock().stepping += 1;
                if let Some(old) = self.services.runners.insert(key.clone(), runner.clone()) {
                    self.close_runner(key, &old, false).await;
                }
                self.spawn_watchdog(key.clone(), runner.clone());
                runner
            }
        };
        metrics::started(started);
        let result = match module.token {
            Some(token) => {
                let mut pin = runner.pin.lock().await;
                match pin.as_mut() {
                    Some(pinned) => Some(pinned.run_effects(token).await),
                    None => None,
                }
            }
            None => None,
        };
        runner.st.lock().stepping -= 1;
        if let Some(result) = result {
            self.absorb(key, &runner, result).await;
        }
        self.settle_if_quiet(key, &runner).await;
    }

    /// The commit of a step that ran in a module guest failed: its token is dropped.
    pub(in crate::registry) async fn discard_module_step(&self, module: ModuleStep) {
        match module.source {
            // Dropping the handle releases the guest and all it held.
            Source::Fresh(pinned) => drop(pinned),
            Source::Runner(runner) => {
                if let Some(token) = module.token {
                    if let Some(pinned) = runner.pin.lock().await.as_mut() {
                        let _ = pinned.discard(token).await;
                    }
                }
                runner.st.lock().stepping -= 1;
            }
        }
    }

    /// Carries out an effect call's outbox (or the partial outbox of a failed call, after
    /// which the guest is gone).
    async fn absorb(
        self: &Arc<Self>,
        key: &InstanceKey,
        runner: &Arc<Runner>,
        result: Result<Outbox, EffectError>,
    ) {
        let (outbox, lost) = match result {
            Ok(outbox) => (outbox, false),
            Err(e) => {
                tracing::warn!(instance = %key, error = %e.error, "effect call on the pinned guest failed");
                let lost = runner.pin.lock().await.as_ref().is_none_or(Pinned::is_lost);
                (e.partial.unwrap_or_default(), lost)
            }
        };
        {
            let mut st = runner.st.lock();
            if st.closed {
                return;
            }
            for id in &outbox.abort {
                if let Some(handle) = st.ops.remove(id) {
                    handle.abort();
                }
            }
            st.running = outbox.running;
            for op in outbox.ops {
                let id = op.op_id();
                let handle = tokio::spawn(self.clone().perform(key.clone(), runner.clone(), op));
                st.ops.insert(id, handle.abort_handle());
            }
            for event in outbox.events {
                count_result(&event);
                st.queue.push_back(Work::Event(event));
            }
            st.queue.extend(outbox.sends.into_iter().map(Work::Send));
            if !st.delivering && !st.queue.is_empty() {
                st.delivering = true;
                tokio::spawn(self.clone().deliver_queue(key.clone(), runner.clone()));
            }
        }
        if lost {
            self.close_runner(key, runner, false).await;
        }
    }

    /// Performs one host operation and hands its result back to the guest.
    /// Boxed, like [`Inner::deliver_queue`]: both are spawned from code they call.
    fn perform(
        self: Arc<Self>,
        key: InstanceKey,
        runner: Arc<Runner>,
        op: HostOp,
    ) -> BoxFuture<'static, ()> {
        Box::pin(self.perform_inner(key, runner, op))
    }

    async fn perform_inner(self: Arc<Self>, key: InstanceKey, runner: Arc<Runner>, op: HostOp) {
        let op_id = op.op_id();
        let host_ops = self.services.host_ops.read().clone();
        let result = match op {
            HostOp::Fetch { request, .. } => match host_ops {
                Some(ops) => ops.fetch(key.machine.as_str(), &request).await,
                None => json!({"ok": false, "error": "fetch is not available on this server"}),
            },
            HostOp::Sleep { ms, .. } => {
                match host_ops {
                    Some(ops) => ops.sleep(ms).await,
                    None => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
                }
                json!({})
            }
        };
        if !runner.st.lock().ops.contains_key(&op_id) {
            tracing::debug!(instance = %key, op = op_id, "a host operation finished after it was cancelled; its result is dropped");
            return;
        }
        let outcome = {
            let mut pin = runner.pin.lock().await;
            match pin.as_mut() {
                Some(pinned) => Some(pinned.complete_op(op_id, result).await),
                None => None,
            }
        };
        if let Some(outcome) = outcome {
            self.absorb(&key, &runner, outcome).await;
        }
        runner.st.lock().ops.remove(&op_id);
        self.settle_if_quiet(&key, &runner).await;
    }

    /// Delivers the runner's queue in order: events through the instance's write path, sends
    /// into its durable outbox.
    fn deliver_queue(
        self: Arc<Self>,
        key: InstanceKey,
        runner: Arc<Runner>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(self.deliver_queue_inner(key, runner))
    }

    async fn deliver_queue_inner(self: Arc<Self>, key: InstanceKey, runner: Arc<Runner>) {
        loop {
            let work = {
                let mut st = runner.st.lock();
                match st.queue.pop_front() {
                    Some(work) => work,
                    None => {
                        st.delivering = false;
                        break;
                    }
                }
            };
            let result = match work {
                Work::Event(event) => self.service_event(&key, &runner, &event).await,
                Work::Send(send) => self.queue_send(&key, &runner, send).await,
            };
            if let Err(e) = result {
                tracing::warn!(instance = %key, error = %e, "an event from a service could not be delivered");
            }
        }
        self.settle_if_quiet(&key, &runner).await;
    }

    /// An event from one of the instance's services: a step without `allowWrite` (the
    /// machine asked for it), after any owed error events. Dropped when the runner was
    /// closed or the instance is no longer the one the runner was started for (it was
    /// deleted, and perhaps created again with the same name).
    async fn service_event(
        self: &Arc<Self>,
        key: &InstanceKey,
        runner: &Arc<Runner>,
        event: &Value,
    ) -> Result<(), RegistryError> {
        let _write = self.inflight.begin()?;
        if runner.st.lock().closed {
            drop_late(key, event);
            return Ok(());
        }
        self.pay_owed(key).await?;
        self.write_existing(key, |current| async move {
            if !runner.owns(&current) {
                drop_late(key, event);
                return Ok(None);
            }
            let mut effects = current.effects.clone();
            if let Some(id) = finished_service(event) {
                effects.remove_service(id);
            }
            self.machine_step(key, &current, effects, event)
                .await
                .map(Some)
        })
        .await
        .map(drop)
    }
}

fn drop_late(key: &InstanceKey, event: &Value) {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    tracing::info!(instance = %key, event = kind, "a service result of a stopped or deleted instance was dropped");
}

/// The service a done or error event reports the end of, if it is one.
fn finished_service(event: &Value) -> Option<&str> {
    let kind = event.get("type").and_then(Value::as_str)?;
    [
        "done.invoke.",
        "error.platform.",
        "xstate.done.actor.",
        "xstate.error.actor.",
    ]
    .iter()
    .find_map(|prefix| kind.strip_prefix(prefix))
}

fn count_result(event: &Value) {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.starts_with("done.invoke.") || kind.starts_with("xstate.done.actor.") {
        metrics::done();
    } else if kind.starts_with("error.platform.") || kind.starts_with("xstate.error.actor.") {
        metrics::failed();
    }
}
