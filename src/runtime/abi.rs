//! The machine ABI (versions 1 and 2) as the host sees it: the exports a module must have, the operations, and
//! the JSON that comes back (docs/machine-abi.md).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use wasmer::{ExternType, FunctionType, Module, Type};

use super::{CodeKind, RuntimeError};

pub const ABI_VERSION: i32 = 2;

/// ABI versions this host runs: 1 (pure machines) and 2 (adds effect execution; a version 2
/// module also serves every version 1 operation unchanged).
pub const SUPPORTED_ABI_VERSIONS: std::ops::RangeInclusive<i32> = 1..=ABI_VERSION;
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

pub const EXPORT_MEMORY: &str = "memory";
pub const EXPORT_VERSION: &str = "statewire_abi_version";
pub const EXPORT_INPUT: &str = "statewire_input";
pub const EXPORT_CALL: &str = "statewire_call";
pub const EXPORT_INITIALIZE: &str = "_initialize";

/// The operations of `statewire_call`, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Configure = 0,
    Load = 1,
    Init = 2,
    Transition = 3,
    AllowRead = 4,
    AllowWrite = 5,
    RunEffects = 6,
    Complete = 7,
    StopChild = 8,
    Discard = 9,
    Running = 10,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Configure => "configure",
            Op::Load => "load",
            Op::Init => "init",
            Op::Transition => "transition",
            Op::AllowRead => "allow_read",
            Op::AllowWrite => "allow_write",
            Op::RunEffects => "run_effects",
            Op::Complete => "complete_op",
            Op::StopChild => "stop_child",
            Op::Discard => "discard",
            Op::Running => "running",
        }
    }

    /// Whether the operation answers an outbox (version 2 effect operations, 6–10).
    pub fn answers_outbox(self) -> bool {
        matches!(
            self,
            Op::RunEffects | Op::Complete | Op::StopChild | Op::Discard | Op::Running
        )
    }
}

/// Checks what can be checked before instantiating: the required exports with their exact
/// signatures, a memory that is defined (not imported) and not shared, and imports only from
/// `wasi_snapshot_preview1` (their signatures are checked when the imports are built).
pub fn validate(module: &Module) -> Result<(), String> {
    let func = |params: &[Type], results: &[Type]| FunctionType::new(params, results);
    let required = [
        (EXPORT_VERSION, func(&[], &[Type::I32])),
        (EXPORT_INPUT, func(&[Type::I32], &[Type::I32])),
        (EXPORT_CALL, func(&[Type::I32, Type::I32], &[Type::I64])),
    ];
    let mut memory = false;
    for export in module.exports() {
        match (export.name(), export.ty()) {
            (EXPORT_MEMORY, ExternType::Memory(ty)) => {
                if ty.shared {
                    return Err("the exported memory must not be shared".into());
                }
                memory = true;
            }
            (EXPORT_INITIALIZE, ExternType::Function(ty)) => {
                if *ty != func(&[], &[]) {
                    return Err(format!("{EXPORT_INITIALIZE} must take and return nothing"));
                }
            }
            (name, ty) => {
                if let Some((_, want)) = required.iter().find(|(n, _)| *n == name) {
                    if !matches!(ty, ExternType::Function(got) if got == want) {
                        return Err(format!("export {name} must be a function {want}"));
                    }
                }
            }
        }
    }
    if !memory {
        return Err(format!(
            "the module must export its memory as `{EXPORT_MEMORY}`"
        ));
    }
    for (name, _) in &required {
        if !module.exports().any(|e| e.name() == *name) {
            return Err(format!("the module does not export `{name}`"));
        }
    }
    for import in module.imports() {
        let outside = import.module() != WASI_MODULE;
        if outside || !matches!(import.ty(), ExternType::Function(_)) {
            return Err(format!(
                "the module imports {}.{}; only {WASI_MODULE} functions are provided",
                import.module(),
                import.name()
            ));
        }
    }
    Ok(())
}

/// An error a guest reported in `{"error": {"kind", "message"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GuestError {
    pub kind: String,
    #[serde(default)]
    pub message: String,
    /// What an effect operation (6–10) did before it failed; decoded by the caller that
    /// expects it, ignored elsewhere.
    #[serde(default)]
    pub outbox: Option<Value>,
}

impl GuestError {
    /// Whether the guest that reported this must be dropped: after `out-of-memory` its
    /// memory stays at the cap, and after `internal` the module itself asks to be discarded.
    pub fn spoils_guest(&self) -> bool {
        matches!(self.kind.as_str(), "out-of-memory" | "internal")
    }

    pub fn is_unsupported_op(&self) -> bool {
        self.kind == "unsupported-op"
    }

    /// The runtime error for this guest error. `unsupported-op` on a required operation
    /// means the module does not implement the ABI.
    pub fn into_runtime_error(self, op: Op) -> RuntimeError {
        let GuestError { kind, message, .. } = self;
        match kind.as_str() {
            "invalid-bundle" => RuntimeError::InvalidBundle(message),
            "machine-threw" => RuntimeError::MachineThrew(message),
            "bad-input" => RuntimeError::BadInput(message),
            "out-of-memory" => RuntimeError::OutOfMemory,
            "unsupported-op" => RuntimeError::InvalidBundle(format!(
                "the module does not support {}: {message}",
                op.name()
            )),
            "internal" => RuntimeError::Internal(format!("guest: {message}")),
            other => {
                RuntimeError::Internal(format!("guest error of unknown kind {other}: {message}"))
            }
        }
    }
}

/// `{"ok": T}` or `{"error": …}`.
#[derive(Deserialize)]
struct Envelope<T> {
    ok: Option<T>,
    error: Option<GuestError>,
}

/// Parses a guest's output. The outer `Err` means the module broke the ABI.
pub fn decode<T: DeserializeOwned>(output: &[u8]) -> Result<Result<T, GuestError>, String> {
    let envelope: Envelope<T> =
        serde_json::from_slice(output).map_err(|e| format!("output is not ABI JSON: {e}"))?;
    match envelope {
        Envelope {
            ok: Some(ok),
            error: None,
        } => Ok(Ok(ok)),
        Envelope {
            ok: None,
            error: Some(error),
        } => Ok(Err(error)),
        _ => Err("output must hold exactly one of `ok` and `error`".into()),
    }
}

/// The result of `load`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loaded {
    pub abi: i32,
    #[serde(default)]
    pub xstate_major: Option<u8>,
    #[serde(default)]
    pub exports: Vec<String>,
}

/// A Step as the guest writes it; `tags`, `done`, `effects`, `token` and `logs` may be left
/// out (a version 1 module never writes `token`).
#[derive(Debug, Deserialize)]
pub struct StepWire {
    pub snapshot: Value,
    pub state: Value,
    pub context: Value,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub effects: Vec<Value>,
    #[serde(default)]
    pub token: Option<u64>,
    #[serde(default)]
    pub logs: Vec<GuestLog>,
}

/// A console line the machine wrote during a call.
#[derive(Debug, Deserialize)]
pub struct GuestLog {
    pub level: String,
    pub message: String,
}

/// Writes a call's console lines to the host log, as machine log lines.
pub fn write_logs(machine: &str, logs: &[GuestLog]) {
    for line in logs {
        tracing::debug!(%machine, level = %line.level, message = %line.message, "machine log");
    }
}

/// The result of `allow_read` and `allow_write`.
#[derive(Debug, Deserialize)]
pub struct Allowed {
    pub allowed: bool,
}

/// A broken ABI is the module author's fault for raw wasm, and ours for the JS guest.
pub fn abi_violation(kind: CodeKind, what: String) -> RuntimeError {
    match kind {
        CodeKind::RawWasm => {
            RuntimeError::Trap(format!("the module broke the machine ABI: {what}"))
        }
        CodeKind::JsBundle => {
            RuntimeError::Internal(format!("the JavaScript guest broke the ABI: {what}"))
        }
    }
}

/// Size of `value` as compact JSON, without building the string.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("writing a Value to a counter cannot fail");
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Module {
        let engine = super::super::engine::build_engine(1 << 20);
        Module::new(&engine, wat).unwrap()
    }

    const GOOD: &str = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "statewire_abi_version") (result i32) (i32.const 1))
        (func (export "statewire_input") (param i32) (result i32) (i32.const 0))
        (func (export "statewire_call") (param i32 i32) (result i64) (i64.const 0)))"#;

    #[test]
    fn a_module_with_the_abi_exports_is_valid() {
        assert_eq!(validate(&module(GOOD)), Ok(()));
    }

    #[test]
    fn missing_or_mistyped_exports_are_named() {
        let missing = GOOD.replace("(export \"statewire_call\")", "");
        assert!(validate(&module(&missing))
            .unwrap_err()
            .contains("statewire_call"));
        let mistyped = GOOD.replace(
            "(param i32) (result i32) (i32.const 0)",
            "(result i32) (i32.const 0)",
        );
        assert!(validate(&module(&mistyped))
            .unwrap_err()
            .contains("statewire_input"));
        let no_memory = GOOD.replace("(export \"memory\")", "");
        assert!(validate(&module(&no_memory))
            .unwrap_err()
            .contains("memory"));
    }

    #[test]
    fn imports_outside_wasi_are_refused() {
        let foreign = GOOD.replace("wasi_snapshot_preview1", "env");
        assert!(validate(&module(&foreign))
            .unwrap_err()
            .contains("env.fd_write"));
    }

    #[test]
    fn envelopes_hold_exactly_one_side() {
        let ok: Result<Allowed, _> = decode::<Allowed>(br#"{"ok":{"allowed":true}}"#).unwrap();
        assert!(ok.unwrap().allowed);
        let err = decode::<Allowed>(br#"{"error":{"kind":"bad-input","message":"m"}}"#).unwrap();
        assert_eq!(err.unwrap_err().kind, "bad-input");
        assert!(decode::<Allowed>(br#"{}"#).is_err());
        assert!(decode::<Allowed>(b"not json").is_err());
    }

    #[test]
    fn guest_error_kinds_map_to_runtime_errors() {
        let e = |kind: &str| GuestError {
            kind: kind.into(),
            message: "m".into(),
            outbox: None,
        };
        assert!(matches!(
            e("machine-threw").into_runtime_error(Op::Init),
            RuntimeError::MachineThrew(_)
        ));
        assert!(matches!(
            e("invalid-bundle").into_runtime_error(Op::Load),
            RuntimeError::InvalidBundle(_)
        ));
        assert!(matches!(
            e("bad-input").into_runtime_error(Op::Init),
            RuntimeError::BadInput(_)
        ));
        assert!(matches!(
            e("out-of-memory").into_runtime_error(Op::Init),
            RuntimeError::OutOfMemory
        ));
        assert!(matches!(
            e("internal").into_runtime_error(Op::Init),
            RuntimeError::Internal(_)
        ));
    }

    #[test]
    fn json_len_counts_compact_bytes() {
        let v = serde_json::json!({"a": [1, 2], "b": "x"});
        assert_eq!(json_len(&v), serde_json::to_string(&v).unwrap().len());
    }
}
