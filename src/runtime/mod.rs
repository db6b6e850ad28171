//! The wasmer host for machine modules.
//!
//! A machine module is either a JavaScript bundle in State Backed's shape (run by the QuickJS
//! guest in `guest/`, which is compiled to `wasm32-wasip1` and embedded in this binary) or a raw
//! WebAssembly module that implements the same ABI (docs/machine-abi.md). Every call is JSON in,
//! JSON out, on a dedicated worker thread, never on the async reactor, under a wall-clock
//! deadline and a memory cap.
//!
//! Layout:
//! - `engine`: the wasmer engine: Cranelift, tunables that cap each memory, the host interrupt.
//! - `cache`: compiled modules, in memory and serialized on disk across restarts.
//! - `abi`: the machine ABI as the host sees it: exports, operations, the JSON that comes back.
//! - `wasi`: the few `wasi_snapshot_preview1` functions a module may import.
//! - `guest`: one instantiated module: the ABI calls, trap classification, memory images.
//! - `pool`: per machine, a template loaded once whose image is copied into new guests, and
//!   each worker's warm guests.
//! - `workers`: the threads that own guests and run calls; `watchdog` enforces deadlines.
//! - `pinned`: guests kept for one machine instance while its effects run (ABI version 2),
//!   and `outbox`: what the effect operations answer.
//! - `throttle`: machines that recently hit their deadline or memory cap share fewer workers.
//! - `stats`, `lru`: counters for metrics, and the small LRU map behind the bounded caches.

mod abi;
mod cache;
mod engine;
mod guest;
mod lru;
mod outbox;
mod pinboard;
mod pinned;
mod pool;
mod stats;
mod throttle;
mod wasi;
mod watchdog;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use outbox::{EffectError, HostOp, Outbox, SendTo};
pub use pinned::Pinned;
pub use stats::RuntimeStats;

/// Limits and sizes for the runtime. Defaults follow State Backed's published limits.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled-module artifacts are cached across restarts.
    pub cache_dir: PathBuf,
    /// Wall-clock deadline for one guest call (load, init, transition, authorizer).
    pub call_deadline: Duration,
    /// Linear-memory cap for one guest.
    pub memory_limit_bytes: u64,
    /// Largest accepted machine module, unzipped.
    pub max_bundle_bytes: usize,
    /// Largest accepted context, as UTF-8 JSON.
    pub max_context_bytes: usize,
    /// Threads that run wasm calls.
    pub workers: usize,
    /// Warm guests kept per machine module per worker. A worker runs one call at a time, so
    /// it reuses one guest per machine; 0 makes every call start from a fresh copy.
    pub idle_guests_per_machine: usize,
    /// Guests pinned to machine instances at once (see [`Pinned`]); a JavaScript guest holds
    /// about 2 MiB. Pinning beyond this fails with [`RuntimeError::TooManyPinned`].
    pub max_pinned: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: PathBuf::from("statewire-data/cache"),
            call_deadline: Duration::from_secs(10),
            memory_limit_bytes: 128 * 1024 * 1024,
            max_bundle_bytes: 10_000_000,
            max_context_bytes: 400_000,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            idle_guests_per_machine: 2,
            max_pinned: 1024,
        }
    }
}

/// Why a runtime call failed. Each variant leaves the instance untouched: nothing is stored
/// unless a call returns `Ok`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// The module could not be loaded: syntax error, missing exports, bad wasm, wrong ABI.
    #[error("invalid machine bundle: {0}")]
    InvalidBundle(String),
    #[error("machine bundle is {size} bytes; the limit is {limit}")]
    BundleTooLarge { size: usize, limit: usize },
    /// User code threw (a guard, an action, an authorizer, the machine's own checks).
    #[error("machine code threw: {0}")]
    MachineThrew(String),
    /// The call ran past its wall-clock deadline and was interrupted.
    #[error("machine call exceeded its {0:?} deadline")]
    Deadline(Duration),
    /// The guest ran out of memory under its cap.
    #[error("machine exceeded its memory limit")]
    OutOfMemory,
    #[error("context is {size} bytes of JSON; the limit is {limit}")]
    ContextTooLarge { size: usize, limit: usize },
    /// The input was refused before it reached user code (e.g. an event without `type`).
    #[error("invalid input: {0}")]
    BadInput(String),
    /// Any other trap of the guest; the guest was discarded.
    #[error("machine module trapped: {0}")]
    Trap(String),
    /// The runtime itself failed (compile error of our own guest, worker gone).
    #[error("runtime failure: {0}")]
    Internal(String),
    /// A step left work for its guest, but `max_pinned` guests are already pinned; the step
    /// was dropped (nothing of it ran) and may be retried once pinned guests are released.
    #[error("{limit} machine guests are already pinned to running effects; try again later")]
    TooManyPinned { limit: usize },
    /// A call on a [`Pinned`] guest that was discarded earlier (a trap, a deadline, an
    /// `out-of-memory` or `internal` answer to an effect operation, a cancelled call). The
    /// services that ran in it are lost.
    #[error("the machine guest of this instance was discarded: {0}")]
    GuestLost(String),
    /// The machine recently ran into its deadline or memory limit, so its calls share fewer
    /// workers, and this call found none free within twice the call deadline. Nothing of it
    /// ran.
    #[error("this machine recently exceeded its limits and its calls are limited; no worker was free for this call in time; try again later")]
    Throttled,
}

/// How a module's bytes are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// An ES module: default export an XState machine, named exports `allowRead`/`allowWrite`.
    JsBundle,
    /// A WebAssembly module implementing the machine ABI itself.
    RawWasm,
}

/// A machine module's code, identified by the SHA-256 of its bytes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MachineCode {
    pub kind: CodeKind,
    /// Lowercase hex SHA-256 of `bytes`; the key of every cache and pool.
    pub hash: Arc<str>,
    pub bytes: Arc<[u8]>,
}

/// What loading a module revealed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleInfo {
    pub kind: CodeKind,
    /// 4 or 5 for JS bundles; `None` for raw wasm.
    pub xstate_major: Option<u8>,
    /// Exports found besides the default machine (e.g. `allowRead`, `allowWrite`).
    pub exports: Vec<String>,
}

impl serde::Serialize for CodeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            CodeKind::JsBundle => "js",
            CodeKind::RawWasm => "wasm",
        })
    }
}

/// Input of `init`: the caller's context is shallow-merged over the machine's initial context.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitInput {
    pub machine_instance_name: String,
    pub context: Value,
    pub auth_context: Value,
}

/// The result of `init` or `transition`: the next persisted snapshot and its public view.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Opaque snapshot JSON, passed back verbatim to the next `transition`.
    pub snapshot: String,
    /// XState `state.value`: a string, or nested objects (parallel regions as several keys).
    pub state: Value,
    /// The full context; only `context.public` ever leaves the server.
    pub context: Value,
    /// Tags of the active states, sorted and without duplicates.
    pub tags: Vec<String>,
    pub done: bool,
    /// Effects the transition left for the host, normalized (docs/machine-abi.md).
    pub effects: Vec<Value>,
    /// ABI version 2: what the step left in its guest for `run_effects`; `None` when there is
    /// nothing to run (always for version 1 modules). Only meaningful on the guest that made
    /// the step, which [`Runtime::transition_pinned`] hands back as a [`Pinned`]; the plain
    /// [`Runtime::transition`] runs steps as pure steps and leaves such tokens unrun.
    pub token: Option<u64>,
}

impl Step {
    /// `context.public`, or `{}` when the context has none.
    pub fn public_context(&self) -> Value {
        public_context(&self.context)
    }
}

/// `context.public`, or `{}` when absent or not an object.
pub fn public_context(context: &Value) -> Value {
    match context.get("public") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Default::default()),
    }
}

impl MachineCode {
    /// Wraps module bytes, refusing them above `max_bytes`; the kind is told by the wasm magic.
    pub fn new(bytes: Vec<u8>, max_bytes: usize) -> Result<Self, RuntimeError> {
        if bytes.len() > max_bytes {
            return Err(RuntimeError::BundleTooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let kind = if bytes.starts_with(b"\0asm") {
            CodeKind::RawWasm
        } else {
            CodeKind::JsBundle
        };
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(&bytes);
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            kind,
            hash: hash.into(),
            bytes: bytes.into(),
        })
    }
}

/// The machine runtime. Cheap to clone; all clones share engine, caches and workers.
///
/// Worker threads stop when the last clone is dropped (after finishing the call they are in).
/// The host interrupt that enforces deadlines is delivered as `SIGUSR1` to worker threads, so
/// nothing else in the process may use that signal.
#[derive(Clone)]
pub struct Runtime {
    config: Arc<RuntimeConfig>,
    inner: Arc<Inner>,
}

struct Inner {
    jobs_tx: crossbeam_channel::Sender<workers::Job>,
    shared: Arc<workers::Shared>,
    counters: Arc<stats::Counters>,
    /// Shared with the workers, so the watchdog outlives any call still running.
    _watchdog: Arc<watchdog::Watchdog>,
}

impl Runtime {
    /// Starts `config.workers` worker threads and the deadline watchdog. Compiles nothing yet:
    /// modules are compiled (or loaded from `cache_dir`) when a machine is first used.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        if config.call_deadline.is_zero() {
            return Err(RuntimeError::Internal(
                "call_deadline must be positive".into(),
            ));
        }
        let worker_count = config.workers.max(1);
        let counters = Arc::new(stats::Counters::default());
        let engine = engine::build_engine(config.memory_limit_bytes);
        let modules = cache::ModuleCache::new(engine, &config.cache_dir, counters.clone());
        let shared = Arc::new(workers::Shared {
            config: config.clone(),
            modules,
            templates: pool::Templates::new(),
            counters: counters.clone(),
            js_guest: js_guest(),
            throttle: throttle::Throttle::new(worker_count, throttle::PENALTY),
        });
        let spawn_failed =
            |e: std::io::Error| RuntimeError::Internal(format!("cannot start wasm threads: {e}"));
        let (watchdog, slots) = watchdog::Watchdog::start(worker_count).map_err(spawn_failed)?;
        let watchdog = Arc::new(watchdog);
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        for (id, slot) in slots.into_iter().enumerate() {
            let (shared, jobs_rx, watchdog) = (shared.clone(), jobs_rx.clone(), watchdog.clone());
            std::thread::Builder::new()
                .name(format!("statewire-wasm-{id}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || {
                    workers::run(id, shared, slot, jobs_rx);
                    drop(watchdog);
                })
                .map_err(spawn_failed)?;
        }
        tracing::info!(
            workers = worker_count,
            cache_dir = %config.cache_dir.display(),
            memory_limit_bytes = config.memory_limit_bytes,
            call_deadline_ms = config.call_deadline.as_millis() as u64,
            "machine runtime started"
        );
        Ok(Self {
            config: Arc::new(config),
            inner: Arc::new(Inner {
                jobs_tx,
                shared,
                counters,
                _watchdog: watchdog,
            }),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// What the runtime has done so far (cache hits, guests made, traps by kind).
    pub fn stats(&self) -> RuntimeStats {
        self.inner.counters.snapshot()
    }

    /// Compiles the JavaScript guest, or loads it from the artifact cache, so that the first
    /// JavaScript machine does not wait for it (about a second to compile, milliseconds to
    /// load). Runs on a blocking thread, not on the reactor.
    pub async fn warm_up(&self) -> Result<(), RuntimeError> {
        let shared = self.inner.shared.clone();
        tokio::task::spawn_blocking(move || shared.js_module().map(drop))
            .await
            .map_err(|e| RuntimeError::Internal(format!("warm-up task failed: {e}")))?
    }

    /// Loads the module in a fresh guest and reports what it exports. The loaded machine is
    /// kept as a template, so checking a machine also warms it for later calls.
    pub async fn check(&self, code: &MachineCode) -> Result<BundleInfo, RuntimeError> {
        match self.submit(code, workers::Request::Check).await? {
            workers::Reply::Info(info) => Ok(info),
            _ => Err(unexpected_reply()),
        }
    }

    /// The initial snapshot of a new instance, as a pure step (see [`Step::token`]).
    pub async fn init(&self, code: &MachineCode, input: &InitInput) -> Result<Step, RuntimeError> {
        let input = init_input(input, self.config.max_context_bytes)?;
        self.step(code, abi::Op::Init, input).await
    }

    /// The next snapshot after `event` (an object with `type`), as a pure step (see
    /// [`Step::token`]).
    pub async fn transition(
        &self,
        code: &MachineCode,
        snapshot: &str,
        event: &Value,
    ) -> Result<Step, RuntimeError> {
        let input = transition_input(snapshot, event)?;
        self.step(code, abi::Op::Transition, input).await
    }

    /// `allowRead({machineInstanceName, state, context, authContext})`.
    pub async fn allow_read(&self, code: &MachineCode, args: &Value) -> Result<bool, RuntimeError> {
        self.allowed(code, abi::Op::AllowRead, args).await
    }

    /// `allowWrite({type: "event"|"initialization", …})`.
    pub async fn allow_write(
        &self,
        code: &MachineCode,
        args: &Value,
    ) -> Result<bool, RuntimeError> {
        self.allowed(code, abi::Op::AllowWrite, args).await
    }

    async fn step(
        &self,
        code: &MachineCode,
        op: abi::Op,
        input: Vec<u8>,
    ) -> Result<Step, RuntimeError> {
        match self
            .submit(code, workers::Request::Call { op, input })
            .await?
        {
            workers::Reply::Step(step) => Ok(step),
            _ => Err(unexpected_reply()),
        }
    }

    async fn allowed(
        &self,
        code: &MachineCode,
        op: abi::Op,
        args: &Value,
    ) -> Result<bool, RuntimeError> {
        let input = serde_json::to_vec(args).map_err(|e| RuntimeError::BadInput(e.to_string()))?;
        match self
            .submit(code, workers::Request::Call { op, input })
            .await?
        {
            workers::Reply::Allowed(allowed) => Ok(allowed),
            _ => Err(unexpected_reply()),
        }
    }

    /// Queues a job for the workers and waits for its reply without blocking the reactor.
    /// Calls of a penalized machine first wait for the penalty box (see `throttle`), at most
    /// twice the call deadline; a call queued just before its machine was penalized comes
    /// back unrun and is queued again that way.
    async fn submit(
        &self,
        code: &MachineCode,
        mut request: workers::Request,
    ) -> Result<workers::Reply, RuntimeError> {
        let wait_until =
            tokio::time::Instant::now() + throttle::MAX_WAIT_DEADLINES * self.config.call_deadline;
        loop {
            let admission = self
                .inner
                .shared
                .throttle
                .admit(&code.hash, wait_until)
                .await?;
            let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
            let job = workers::Job {
                code: code.clone(),
                request,
                admission,
                reply_tx,
            };
            self.inner
                .jobs_tx
                .send(job)
                .map_err(|_| RuntimeError::Internal("wasm workers have stopped".into()))?;
            match reply_rx
                .await
                .map_err(|_| RuntimeError::Internal("a wasm worker dropped the call".into()))??
            {
                workers::Reply::Unrun(unrun) => request = unrun,
                reply => return Ok(reply),
            }
        }
    }
}

/// The input of `init`, refused when its context is larger than `max_context_bytes`.
fn init_input(input: &InitInput, max_context_bytes: usize) -> Result<Vec<u8>, RuntimeError> {
    let size = abi::json_len(&input.context);
    if size > max_context_bytes {
        return Err(RuntimeError::ContextTooLarge {
            size,
            limit: max_context_bytes,
        });
    }
    serde_json::to_vec(input).map_err(|e| RuntimeError::BadInput(e.to_string()))
}

/// The input of `transition`; `event` must be an object with a string `type`.
fn transition_input(snapshot: &str, event: &Value) -> Result<Vec<u8>, RuntimeError> {
    if !event.get("type").is_some_and(Value::is_string) {
        return Err(RuntimeError::BadInput(
            "event must be an object with a string type".into(),
        ));
    }
    let event = serde_json::to_string(event).map_err(|e| RuntimeError::BadInput(e.to_string()))?;
    Ok(format!(r#"{{"snapshot":{snapshot},"event":{event}}}"#).into_bytes())
}

/// Native stack of a worker thread; wasm calls run on it.
const WORKER_STACK_BYTES: usize = 8 << 20;

fn unexpected_reply() -> RuntimeError {
    RuntimeError::Internal("a wasm worker answered a different request".into())
}

/// The JavaScript guest (`guest/`), built by `build.rs` and embedded in the binary.
static JS_GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/statewire_guest.wasm"));

/// The embedded JavaScript guest and its hash, computed once per process.
fn js_guest() -> workers::JsGuest {
    static HASH: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| {
        use sha2::Digest as _;
        cache::hex(&sha2::Sha256::digest(JS_GUEST_WASM)).into()
    });
    workers::JsGuest {
        hash: hash.clone(),
        wasm: JS_GUEST_WASM,
    }
}
