//! The wasmer host for machine modules.
//!
//! A machine module is either a JavaScript bundle in State Backed's shape (run by the QuickJS
//! guest in `guest/`, which is compiled to `wasm32-wasip1` and embedded in this binary) or a raw
//! WebAssembly module that implements the same ABI (docs/machine-abi.md). Every call is JSON in,
//! JSON out, on a dedicated worker thread, never on the async reactor, under a wall-clock
//! deadline and a memory cap.
//!
//! Layout:
//! - `engine`: the wasmer engine (Cranelift, memory-capping tunables, host interrupt) and the
//!   compiled-module cache on disk.
//! - `guest`: one instantiated module: WASI stubs, the ABI calls, trap classification.
//! - `pool`: per machine, a template guest whose loaded memory is copied into new guests, and a
//!   set of warm guests.
//! - `workers`: the threads that own guests and run calls, plus the deadline watchdog.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

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
    /// Warm guests kept per machine module per worker.
    pub idle_guests_per_machine: usize,
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
    pub tags: Vec<String>,
    pub done: bool,
    /// Effects the transition left for the host, normalized (docs/machine-abi.md).
    pub effects: Vec<Value>,
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

/// The machine runtime. Cheap to clone; all clones share engine, caches and workers.
///
/// Placeholder surface: the signatures below are the contract the rest of the server uses.
#[derive(Clone)]
pub struct Runtime {
    config: Arc<RuntimeConfig>,
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

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Ok(Self {
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Loads the module in a fresh guest and reports what it exports.
    pub async fn check(&self, _code: &MachineCode) -> Result<BundleInfo, RuntimeError> {
        Err(RuntimeError::Internal("runtime not built yet".into()))
    }

    /// The initial snapshot of a new instance.
    pub async fn init(
        &self,
        _code: &MachineCode,
        _input: &InitInput,
    ) -> Result<Step, RuntimeError> {
        Err(RuntimeError::Internal("runtime not built yet".into()))
    }

    /// The next snapshot after `event` (an object with `type`).
    pub async fn transition(
        &self,
        _code: &MachineCode,
        _snapshot: &str,
        _event: &Value,
    ) -> Result<Step, RuntimeError> {
        Err(RuntimeError::Internal("runtime not built yet".into()))
    }

    /// `allowRead({machineInstanceName, state, context, authContext})`.
    pub async fn allow_read(
        &self,
        _code: &MachineCode,
        _args: &Value,
    ) -> Result<bool, RuntimeError> {
        Err(RuntimeError::Internal("runtime not built yet".into()))
    }

    /// `allowWrite({type: "event"|"initialization", …})`.
    pub async fn allow_write(
        &self,
        _code: &MachineCode,
        _args: &Value,
    ) -> Result<bool, RuntimeError> {
        Err(RuntimeError::Internal("runtime not built yet".into()))
    }
}
