//! The QuickJS engine: one runtime and one context per module instance, created on the first
//! call, with the glue evaluated in it. Each ABI call is `__statewire.call(op, input)`, then
//! every pending job (module loading and machine promises settle there), then
//! `__statewire.output()`.
//!
//! Limits:
//! - the heap limit defaults to [`DEFAULT_HEAP_LIMIT_BYTES`]; `configure` may change it. When
//!   the heap runs out, QuickJS throws, the call answers `out-of-memory`, and a garbage
//!   collection right after frees what the failed call left, so the next call works;
//! - the stack limit defaults to [`DEFAULT_STACK_LIMIT_BYTES`]; `configure` may change it (up to
//!   [`MAX_STACK_LIMIT_BYTES`]). It turns runaway recursion into a JS `RangeError` before a
//!   wasm stack overflows, which would trap. QuickJS measures the shadow stack in linear memory
//!   (256 KiB, see build.rs), but the binding limit is the host's native stack: recursion
//!   inside C (`JSON.parse`/`JSON.stringify` of deeply nested values) needs about 11 bytes of
//!   native stack per byte of shadow stack. Measured under wasmer with Cranelift and its
//!   default 1 MiB native stack: every recursion kind tried becomes a `RangeError` with limits
//!   up to 80 KiB, and JSON recursion traps from 96 KiB on. The default leaves room for that,
//!   and still fits 160 plain JS frames; XState itself needs under 12 KiB. A host that runs
//!   guests on a larger native stack may raise the limit;
//! - nothing here bounds time: the host interrupts a call that runs past its deadline, and an
//!   interrupted module must be discarded.

use std::cell::RefCell;

use rquickjs::context::EvalOptions;
use rquickjs::function::This;
use rquickjs::{qjs, ArrayBuffer, Context, Ctx, Exception, Function, Object, Runtime, Value};

use crate::answer::{self, Kind};
use crate::modules::{self, PendingBundle, Sources, Specifiers};
use crate::random;

/// Under the host's 128 MiB cap on linear memory, leaving room for the module's own data,
/// its stack and the input and output buffers.
const DEFAULT_HEAP_LIMIT_BYTES: usize = 112 * 1024 * 1024;
/// Safe on a 1 MiB native stack (see the module comment).
const DEFAULT_STACK_LIMIT_BYTES: usize = 48 * 1024;
/// The shadow stack is 256 KiB (build.rs); a quarter stays for the frames QuickJS does not
/// count (this crate's and rquickjs's, below the first JS call).
const MAX_STACK_LIMIT_BYTES: usize = 192 * 1024;
/// The `load` operation, whose input is module source, not JSON.
const OP_LOAD: i32 = 1;

struct Engine {
    runtime: Runtime,
    context: Context,
    bundle: PendingBundle,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Runs one ABI call and returns its JSON answer.
pub fn call(op: i32, input: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(input) else {
        let kind = if op == OP_LOAD {
            Kind::InvalidBundle
        } else {
            Kind::BadInput
        };
        return answer::error(kind, "input is not UTF-8");
    };
    ENGINE.with(|engine| {
        let mut engine = engine.borrow_mut();
        if engine.is_none() {
            match Engine::start() {
                Ok(started) => *engine = Some(started),
                Err(message) => return answer::error(Kind::Internal, &message),
            }
        }
        match engine.as_ref() {
            Some(engine) => engine.call(op, text),
            None => answer::error(Kind::Internal, "the engine is not running"),
        }
    })
}

impl Engine {
    fn start() -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| format!("cannot create the JS runtime: {e}"))?;
        runtime.set_memory_limit(DEFAULT_HEAP_LIMIT_BYTES);
        runtime.set_max_stack_size(DEFAULT_STACK_LIMIT_BYTES);
        let bundle = PendingBundle::default();
        runtime.set_loader(
            Specifiers,
            Sources {
                bundle: bundle.clone(),
            },
        );
        let context =
            Context::full(&runtime).map_err(|e| format!("cannot create the JS context: {e}"))?;
        context.with(|ctx| install_glue(&ctx).map_err(|e| describe(&ctx, e)))?;
        Ok(Self {
            runtime,
            context,
            bundle,
        })
    }

    fn call(&self, op: i32, input: &str) -> String {
        let input = if op == OP_LOAD {
            self.bundle.put(input.to_owned());
            ""
        } else {
            input
        };
        let answer = self.context.with(|ctx| {
            run_glue(&ctx, op, input).unwrap_or_else(|e| {
                let message = describe(&ctx, e);
                let kind = if message.contains("out of memory") {
                    Kind::OutOfMemory
                } else {
                    Kind::Internal
                };
                answer::error(kind, &message)
            })
        });
        if answer::is_out_of_memory(&answer) {
            // What the failed call allocated is garbage now; collect it at once instead of
            // leaving it to QuickJS's allocation threshold, which may sit above the limit.
            self.runtime.run_gc();
        }
        answer
    }
}

/// Defines `__statewire_host` (the limits `configure` sets, and the random source behind
/// `crypto`) and evaluates the glue, which defines `__statewire`.
fn install_glue(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    host.set(
        "setHeapLimit",
        Function::new(ctx.clone(), |ctx: Ctx<'_>, bytes: f64| {
            // `bytes` was checked by the glue to be a positive safe integer.
            let limit = bytes as qjs::size_t;
            // SAFETY: the runtime pointer comes from a live context on this thread, and
            // JS_SetMemoryLimit only stores the value.
            unsafe { qjs::JS_SetMemoryLimit(qjs::JS_GetRuntime(ctx.as_raw().as_ptr()), limit) };
        })?,
    )?;
    host.set(
        "setStackLimit",
        Function::new(ctx.clone(), |ctx: Ctx<'_>, bytes: f64| {
            // `bytes` was checked by the glue to be a positive safe integer.
            let limit = (bytes as usize).min(MAX_STACK_LIMIT_BYTES) as qjs::size_t;
            // SAFETY: as above; JS_SetMaxStackSize only stores the value and the new bound.
            unsafe { qjs::JS_SetMaxStackSize(qjs::JS_GetRuntime(ctx.as_raw().as_ptr()), limit) };
        })?,
    )?;
    host.set("randomBytes", Function::new(ctx.clone(), random_buffer)?)?;
    ctx.globals().set("__statewire_host", host)?;
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some("statewire:glue".to_owned());
    ctx.eval_with_options::<(), _>(modules::GLUE_SOURCE, options)
}

/// `randomBytes(len)`: an ArrayBuffer of `len` random bytes. `len` comes from the glue, which
/// checked it against the limit; a failing source is a JS `InternalError`.
fn random_buffer<'js>(ctx: Ctx<'js>, len: f64) -> rquickjs::Result<ArrayBuffer<'js>> {
    let bytes = random::bytes(len.max(0.0) as usize)
        .map_err(|message| Exception::throw_internal(&ctx, &message))?;
    ArrayBuffer::new_copy(ctx, bytes)
}

fn run_glue(ctx: &Ctx<'_>, op: i32, input: &str) -> rquickjs::Result<String> {
    let guest: Object = ctx.globals().get("__statewire")?;
    let start: Function = guest.get("call")?;
    let finish: Function = guest.get("output")?;
    let input = rquickjs::String::from_str(ctx.clone(), input)?;
    start.call::<_, Value>((This(guest.clone()), op, input))?;
    while ctx.execute_pending_job() {}
    let answer: rquickjs::String = finish.call((This(guest),))?;
    answer.to_string()
}

/// The pending exception (or the Rust-side error) as one line of text.
fn describe(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if !error.is_exception() {
        return error.to_string();
    }
    let thrown = ctx.catch();
    if let Some(object) = thrown.as_object() {
        let name: Option<String> = object.get("name").ok();
        let message: Option<String> = object.get("message").ok();
        if let Some(message) = message {
            return format!("{}: {message}", name.unwrap_or_else(|| "Error".to_owned()));
        }
    }
    if thrown.is_null() {
        // QuickJS throws null when it cannot even allocate the error object.
        return "out of memory".to_owned();
    }
    format!("{thrown:?}")
}
