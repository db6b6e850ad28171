//! The few `wasi_snapshot_preview1` functions a machine module may import, without a WASI
//! runtime: stdout/stderr go to the host log at debug, randomness and clocks are real,
//! arguments and environment are empty, `proc_exit` traps, `fd_prestat_get` reports that no
//! directory is preopened, and every other function returns `ENOSYS`. None of them is on the
//! hot path of a transition.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;
use wasmer::{
    ExternType, Function, FunctionEnv, FunctionEnvMut, FunctionType, Imports, Memory, Module,
    RuntimeError, Store, Type, Value,
};

use super::abi::WASI_MODULE;

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOSYS: i32 = 52;

/// Longest stdout/stderr chunk copied into one log line.
const MAX_LOGGED_OUTPUT_BYTES: usize = 4096;

/// Per-guest state the WASI functions need.
pub struct WasiEnv {
    /// Set right after instantiation; WASI calls made before (from a start function) see none.
    pub memory: Option<Memory>,
    /// Hash prefix of the machine, for log fields.
    pub machine: Arc<str>,
}

/// `proc_exit` ends the call with this error; the guest is then discarded.
#[derive(Debug)]
pub struct ProcExit(pub i32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the module called proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

#[derive(Clone, Copy)]
enum WasiFn {
    FdWrite,
    RandomGet,
    ClockTimeGet,
    /// `environ_sizes_get` and `args_sizes_get`: zero entries, zero bytes.
    SizesGet,
    /// `environ_get` and `args_get`: nothing to write.
    ListGet,
    ProcExit,
    /// Returns a fixed errno.
    Errno(i32),
}

impl WasiFn {
    /// The implementation and exact signature for an import name. Unknown names get `ENOSYS`
    /// and must return one i32, as every preview1 function except `proc_exit` does.
    fn lookup(name: &str, ty: &FunctionType) -> Result<Self, String> {
        use Type::{I32, I64};
        let (f, params, results): (_, &[Type], &[Type]) = match name {
            "fd_write" => (WasiFn::FdWrite, &[I32, I32, I32, I32], &[I32]),
            "random_get" => (WasiFn::RandomGet, &[I32, I32], &[I32]),
            "clock_time_get" => (WasiFn::ClockTimeGet, &[I32, I64, I32], &[I32]),
            "environ_sizes_get" | "args_sizes_get" => (WasiFn::SizesGet, &[I32, I32], &[I32]),
            "environ_get" | "args_get" => (WasiFn::ListGet, &[I32, I32], &[I32]),
            "proc_exit" => (WasiFn::ProcExit, &[I32], &[]),
            "fd_prestat_get" => (WasiFn::Errno(ERRNO_BADF), &[I32, I32], &[I32]),
            _ => (WasiFn::Errno(ERRNO_NOSYS), ty.params(), &[I32]),
        };
        if ty.params() != params || ty.results() != results {
            return Err(format!(
                "{WASI_MODULE}.{name} is imported with the signature {ty}"
            ));
        }
        Ok(f)
    }
}

/// Builds the imports `module` asks for. Errors name an import with a wrong signature.
pub fn imports(
    store: &mut Store,
    module: &Module,
    env: &FunctionEnv<WasiEnv>,
) -> Result<Imports, String> {
    let mut imports = Imports::new();
    for import in module.imports() {
        let ExternType::Function(ty) = import.ty() else {
            return Err(format!(
                "{}.{} is not a function",
                import.module(),
                import.name()
            ));
        };
        let f = WasiFn::lookup(import.name(), ty)?;
        let function =
            Function::new_with_env(store, env, ty.clone(), move |env, args| call(f, env, args));
        imports.define(WASI_MODULE, import.name(), function);
    }
    Ok(imports)
}

fn call(
    f: WasiFn,
    mut env: FunctionEnvMut<WasiEnv>,
    args: &[Value],
) -> Result<Vec<Value>, RuntimeError> {
    let arg = |i: usize| args.get(i).and_then(Value::i32).unwrap_or(0);
    let errno = match f {
        WasiFn::ProcExit => return Err(RuntimeError::user(Box::new(ProcExit(arg(0))))),
        WasiFn::Errno(errno) => errno,
        WasiFn::ListGet => ERRNO_SUCCESS,
        WasiFn::SizesGet => with_memory(&mut env, |view, _| {
            write_u32(view, arg(0), 0)?;
            write_u32(view, arg(1), 0)
        }),
        WasiFn::RandomGet => with_memory(&mut env, |view, _| {
            let (ptr, len) = (arg(0) as u32 as u64, arg(1) as u32 as u64);
            if ptr + len > view.data_size() {
                return Err(ERRNO_FAULT);
            }
            let mut buf = vec![0u8; len as usize];
            rand::rng().fill_bytes(&mut buf);
            view.write(ptr, &buf).map_err(|_| ERRNO_FAULT)
        }),
        WasiFn::ClockTimeGet => {
            let clock_id = arg(0);
            let time_ptr = arg(2);
            match clock_nanos(clock_id) {
                Some(nanos) => with_memory(&mut env, |view, _| {
                    view.write(time_ptr as u32 as u64, &nanos.to_le_bytes())
                        .map_err(|_| ERRNO_FAULT)
                }),
                None => ERRNO_INVAL,
            }
        }
        WasiFn::FdWrite => {
            let (fd, iovs, iovs_len, nwritten) = (arg(0), arg(1), arg(2), arg(3));
            if fd != 1 && fd != 2 {
                ERRNO_BADF
            } else {
                with_memory(&mut env, |view, machine| {
                    let written = gather(view, iovs, iovs_len)?;
                    let shown = &written[..written.len().min(MAX_LOGGED_OUTPUT_BYTES)];
                    tracing::debug!(machine = %machine, fd, output = %String::from_utf8_lossy(shown).trim_end(),
                        "guest output");
                    write_u32(view, nwritten, written.len() as u32)
                })
            }
        }
    };
    Ok(vec![Value::I32(errno)])
}

/// Runs `f` on the guest's memory; a missing memory or a fault becomes an errno.
fn with_memory(
    env: &mut FunctionEnvMut<WasiEnv>,
    f: impl FnOnce(&wasmer::MemoryView<'_>, &str) -> Result<(), i32>,
) -> i32 {
    let (data, store) = env.data_and_store_mut();
    let Some(memory) = data.memory.as_ref() else {
        return ERRNO_FAULT;
    };
    let view = memory.view(&store);
    match f(&view, &data.machine) {
        Ok(()) => ERRNO_SUCCESS,
        Err(errno) => errno,
    }
}

fn write_u32(view: &wasmer::MemoryView<'_>, ptr: i32, value: u32) -> Result<(), i32> {
    view.write(ptr as u32 as u64, &value.to_le_bytes())
        .map_err(|_| ERRNO_FAULT)
}

/// Concatenates the buffers of an iovec array (`{ptr: u32, len: u32}` each).
fn gather(view: &wasmer::MemoryView<'_>, iovs: i32, iovs_len: i32) -> Result<Vec<u8>, i32> {
    let mut out = Vec::new();
    for i in 0..iovs_len.max(0) as u64 {
        let mut iov = [0u8; 8];
        view.read(iovs as u32 as u64 + i * 8, &mut iov)
            .map_err(|_| ERRNO_FAULT)?;
        let ptr = u32::from_le_bytes(iov[..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(iov[4..].try_into().expect("4 bytes"));
        let start = out.len();
        out.resize(start + len as usize, 0);
        view.read(u64::from(ptr), &mut out[start..])
            .map_err(|_| ERRNO_FAULT)?;
    }
    Ok(out)
}

/// Realtime (0) is wall-clock time since the Unix epoch; the monotonic and CPU-time clocks
/// (1, 2, 3) all read a monotonic clock that started with the process.
fn clock_nanos(clock_id: i32) -> Option<u64> {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    match clock_id {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as u64),
        1..=3 => Some(STARTED.get_or_init(Instant::now).elapsed().as_nanos() as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_functions_must_have_their_preview1_signature() {
        let good = FunctionType::new([Type::I32, Type::I32], [Type::I32]);
        assert!(WasiFn::lookup("random_get", &good).is_ok());
        let bad = FunctionType::new([Type::I32], [Type::I32]);
        assert!(WasiFn::lookup("random_get", &bad).is_err());
        let exit = FunctionType::new([Type::I32], []);
        assert!(WasiFn::lookup("proc_exit", &exit).is_ok());
    }

    #[test]
    fn unknown_functions_must_return_an_errno() {
        let ok = FunctionType::new([Type::I32, Type::I64], [Type::I32]);
        assert!(matches!(
            WasiFn::lookup("fd_seek", &ok),
            Ok(WasiFn::Errno(ERRNO_NOSYS))
        ));
        let none = FunctionType::new([Type::I32], []);
        assert!(WasiFn::lookup("sched_yield", &none).is_err());
    }

    #[test]
    fn clocks_tick() {
        assert!(clock_nanos(0).unwrap() > 1_600_000_000 * 1_000_000_000);
        let a = clock_nanos(1).unwrap();
        let b = clock_nanos(1).unwrap();
        assert!(b >= a);
        assert_eq!(clock_nanos(7), None);
    }
}
