//! The threads that run guest calls.
//!
//! Callers send a [`Job`] on one shared queue and await a oneshot reply; any idle worker takes
//! the next job. Each worker owns its guests (a [`MachinePool`] per machine) and one watchdog
//! slot, so wasm never runs on the async reactor and no guest is ever shared between threads.
//! Since a transition is a pure function of (snapshot, event), any warm guest of a machine
//! serves any instance of it.
//!
//! A guest pinned to one machine instance (`super::pinned`) stays on the worker that ran the
//! step that pinned it (wasmer stores cannot move between threads): each worker also serves a
//! queue of its own for the calls on its pinned guests, ahead of the shared queue.
//!
//! A worker survives anything a job does: a trap discards that guest; a panic in the host code
//! discards that machine's pool on that worker (or the pinned guest) and answers `Internal`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use wasmer::Module;

use super::abi::{self, abi_violation, json_len, write_logs, Allowed, Op, StepWire};
use super::cache::ModuleCache;
use super::guest::{Fault, Guest};
use super::lru::Lru;
use super::pinboard::Pinboard;
use super::pinned::Pinned;
use super::pool::{
    fault_error, machine_label, MachinePool, Template, Templates, MACHINES_PER_WORKER,
};
use super::stats::{bump, Counters};
use super::throttle::{Admission, Throttle};
use super::watchdog::WatchSlot;
use super::{BundleInfo, CodeKind, MachineCode, RuntimeConfig, RuntimeError, Step};
use crate::metrics::runtime as metrics;

/// What a caller asks of a machine.
pub enum Request {
    /// Load the machine (building its template if needed) and report what it exports.
    Check,
    /// One ABI operation with its JSON input.
    Call { op: Op, input: Vec<u8> },
    /// `init` or `transition` whose guest is kept, pinned, when the Step carries a token.
    Pin { op: Op, input: Vec<u8> },
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::Check => "check",
            Request::Call { op, .. } | Request::Pin { op, .. } => op.name(),
        }
    }
}

pub enum Reply {
    Info(BundleInfo),
    Step(Step),
    Allowed(bool),
    /// The answer to [`Request::Pin`]: the guest, when the Step carries a token.
    PinnedStep(Step, Option<Pinned>),
    /// The request, not run: its machine was penalized after it was queued without a permit
    /// of the penalty box (see `super::throttle`).
    Unrun(Request),
}

pub struct Job {
    pub code: MachineCode,
    pub request: Request,
    /// Held until the job is dropped, after its reply is sent.
    pub admission: Admission,
    pub reply_tx: oneshot::Sender<Result<Reply, RuntimeError>>,
}

/// The JavaScript guest module embedded in this build.
pub struct JsGuest {
    pub hash: Arc<str>,
    pub wasm: &'static [u8],
}

/// What all workers share.
pub struct Shared {
    pub config: RuntimeConfig,
    pub modules: ModuleCache,
    pub templates: Templates,
    pub counters: Arc<Counters>,
    pub js_guest: JsGuest,
    pub throttle: Throttle,
}

impl Shared {
    /// The compiled, validated module that runs `code`.
    fn module_for(&self, code: &MachineCode) -> Result<Module, RuntimeError> {
        match code.kind {
            CodeKind::RawWasm => {
                let module = self.modules.module(&code.hash, &code.bytes).map_err(|e| {
                    RuntimeError::InvalidBundle(format!("not a valid WebAssembly module: {e}"))
                })?;
                abi::validate(&module).map_err(RuntimeError::InvalidBundle)?;
                Ok(module)
            }
            CodeKind::JsBundle => self.js_module(),
        }
    }

    /// The compiled JavaScript guest.
    pub fn js_module(&self) -> Result<Module, RuntimeError> {
        let guest = &self.js_guest;
        let module = self.modules.module(&guest.hash, guest.wasm).map_err(|e| {
            RuntimeError::Internal(format!("cannot compile the JavaScript guest: {e}"))
        })?;
        abi::validate(&module)
            .map_err(|e| RuntimeError::Internal(format!("JavaScript guest: {e}")))?;
        Ok(module)
    }
}

/// Runs jobs from `jobs_rx` until every sender is gone.
pub fn run(id: usize, shared: Arc<Shared>, watch: WatchSlot, jobs_rx: Receiver<Job>) {
    let (pins_tx, pins_rx) = crossbeam_channel::unbounded();
    let mut worker = Worker {
        shared,
        watch,
        pools: Lru::new(MACHINES_PER_WORKER),
        pinboard: Pinboard::new(pins_tx),
    };
    tracing::debug!(worker = id, "wasm worker started");
    loop {
        // Calls on this worker's pinned guests first: no other worker can serve them.
        let message = match pins_rx.try_recv() {
            Ok(message) => Some(message),
            Err(_) => crossbeam_channel::select! {
                recv(pins_rx) -> message => message.ok(),
                recv(jobs_rx) -> job => match job {
                    Ok(job) => {
                        worker.run_job(job);
                        None
                    }
                    Err(_) => break,
                },
            },
        };
        if let Some(message) = message {
            let Worker {
                shared,
                watch,
                pinboard,
                ..
            } = &mut worker;
            pinboard.handle(shared, watch, message);
        }
    }
    tracing::debug!(worker = id, "wasm worker stopped");
}

impl Worker {
    fn run_job(&mut self, job: Job) {
        let worker = self;
        if !job.admission.is_limited() && worker.shared.throttle.is_penalized(&job.code.hash) {
            let _ = job.reply_tx.send(Ok(Reply::Unrun(job.request)));
            return;
        }
        let started = Instant::now();
        let op = job.request.name();
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| worker.execute(&job.code, job.request)))
                .unwrap_or_else(|_| {
                    worker.pools.remove(&job.code.hash);
                    Err(RuntimeError::Internal("a wasm worker panicked".into()))
                });
        if let Err(e) = &result {
            if matches!(e, RuntimeError::Deadline(_) | RuntimeError::OutOfMemory) {
                worker.shared.throttle.penalize(&job.code.hash);
            }
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            let machine = machine_label(&job.code.hash);
            if matches!(e, RuntimeError::Internal(_)) {
                tracing::error!(%machine, op, elapsed_ms, error = %e, "machine call failed");
            } else {
                tracing::debug!(%machine, op, elapsed_ms, error = %e, "machine call failed");
            }
        }
        let _ = job.reply_tx.send(result);
    }
}

struct Worker {
    shared: Arc<Shared>,
    watch: WatchSlot,
    pools: Lru<Arc<str>, MachinePool>,
    /// Guests pinned by steps this worker ran; only this worker can run them.
    pinboard: Pinboard,
}

impl Worker {
    fn execute(&mut self, code: &MachineCode, request: Request) -> Result<Reply, RuntimeError> {
        let Worker {
            shared,
            watch,
            pools,
            pinboard,
        } = self;
        if pools.get_mut(&code.hash).is_none() {
            let template = shared.templates.get_or_build(&code.hash, || {
                let module = shared.module_for(code)?;
                let started = Instant::now();
                let template =
                    Template::build(shared.modules.engine(), module, code, &shared.config, watch)?;
                bump(&shared.counters.templates_built);
                tracing::debug!(
                    machine = %template.machine,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    image_bytes = template.image.bytes(),
                    "machine loaded"
                );
                Ok(template)
            })?;
            pools.insert(code.hash.clone(), MachinePool::new(template));
        }
        let pool = pools
            .get_mut(&code.hash)
            .expect("the pool was just inserted");
        let (op, input, pin) = match request {
            Request::Check => return Ok(Reply::Info(pool.template.info.clone())),
            Request::Call { op, input } => (op, input, false),
            Request::Pin { op, input } => (op, input, true),
        };

        let config = &shared.config;
        let mut guest = pool.take(&shared.counters)?;
        let started = Instant::now();
        let output = call_guest(&mut guest, shared, watch, code.kind, op, &input)?;
        let (reply, keep_guest) = decode_reply(op, &output, &pool.template, config);
        if matches!(reply, Err(RuntimeError::OutOfMemory)) {
            count_out_of_memory(&shared.counters, code.kind);
        }
        let reply = match reply {
            Ok(Reply::Step(step)) if pin && step.token.is_some() => {
                return pinboard.adopt(shared, &pool.template, guest, step);
            }
            Ok(Reply::Step(step)) if pin => Ok(Reply::PinnedStep(step, None)),
            reply => reply,
        };
        if keep_guest {
            pool.give_back(guest, config.idle_guests_per_machine);
        }
        tracing::trace!(
            machine = %pool.template.machine,
            op = op.name(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "machine call"
        );
        reply
    }
}

/// Runs `op` on `guest` under the call deadline, counting the call, its duration and the
/// fault that ends it, if any.
pub(super) fn call_guest(
    guest: &mut Guest,
    shared: &Shared,
    watch: &WatchSlot,
    kind: CodeKind,
    op: Op,
    input: &[u8],
) -> Result<Vec<u8>, RuntimeError> {
    let (counters, config) = (&shared.counters, &shared.config);
    bump(&counters.calls);
    let started = Instant::now();
    let output = guest.call(op, input, watch, config.call_deadline);
    metrics::call_finished(op.name(), kind, started.elapsed());
    output.map_err(|fault| {
        count_fault(counters, kind, &fault);
        fault_error(fault, kind, config.call_deadline)
    })
}

/// Counts a guest's clean `out-of-memory` answer, which is no fault of the call itself.
pub(super) fn count_out_of_memory(counters: &Counters, kind: CodeKind) {
    bump(&counters.out_of_memory);
    metrics::fault(kind, metrics::Fault::OutOfMemory);
}

fn count_fault(counters: &Counters, kind: CodeKind, fault: &Fault) {
    let (counter, label) = match fault {
        Fault::Deadline => (&counters.deadline_exceeded, metrics::Fault::Deadline),
        Fault::OutOfMemory => (&counters.out_of_memory, metrics::Fault::OutOfMemory),
        Fault::Trap(_) | Fault::Abi(_) => (&counters.traps, metrics::Fault::Trap),
    };
    bump(counter);
    metrics::fault(kind, label);
}

/// The reply for an operation's output, and whether the guest may serve further calls: yes
/// after a clean result or a clean error, no after `out-of-memory` or `internal`, or output
/// that breaks the ABI.
pub(super) fn decode_reply(
    op: Op,
    output: &[u8],
    template: &Template,
    config: &RuntimeConfig,
) -> (Result<Reply, RuntimeError>, bool) {
    match op {
        Op::Init | Op::Transition => {
            let (step, keep) = decoded::<StepWire>(op, output, template.kind);
            let reply = step.and_then(|wire| into_step(wire, template, config.max_context_bytes));
            (reply.map(Reply::Step), keep)
        }
        Op::AllowRead | Op::AllowWrite => {
            let (allowed, keep) = decoded::<Allowed>(op, output, template.kind);
            (allowed.map(|a| Reply::Allowed(a.allowed)), keep)
        }
        Op::Configure
        | Op::Load
        | Op::RunEffects
        | Op::Complete
        | Op::StopChild
        | Op::Discard
        | Op::Running => (
            Err(RuntimeError::Internal(format!(
                "{} is never asked of a pooled guest",
                op.name()
            ))),
            true,
        ),
    }
}

fn decoded<T: DeserializeOwned>(
    op: Op,
    output: &[u8],
    kind: CodeKind,
) -> (Result<T, RuntimeError>, bool) {
    match abi::decode::<T>(output) {
        Ok(Ok(value)) => (Ok(value), true),
        Ok(Err(e)) => {
            let keep = !e.spoils_guest();
            (Err(e.into_runtime_error(op)), keep)
        }
        Err(violation) => (Err(abi_violation(kind, violation)), false),
    }
}

fn into_step(
    wire: StepWire,
    template: &Template,
    max_context_bytes: usize,
) -> Result<Step, RuntimeError> {
    write_logs(&template.machine, &wire.logs);
    let size = json_len(&wire.context);
    if size > max_context_bytes {
        return Err(RuntimeError::ContextTooLarge {
            size,
            limit: max_context_bytes,
        });
    }
    // XState keeps tags in a Set whose order depends on how the state was reached (restored
    // or interpreted); sorted tags make equal states compare equal and keep pushed diffs quiet.
    let mut tags = wire.tags;
    tags.sort_unstable();
    tags.dedup();
    Ok(Step {
        snapshot: wire.snapshot.to_string(),
        state: wire.state,
        context: wire.context,
        tags,
        done: wire.done,
        effects: wire.effects,
        token: wire.token,
    })
}
