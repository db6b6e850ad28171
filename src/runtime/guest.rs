//! One instantiated machine module with its own wasmer `Store`, and the ABI calls on it.
//!
//! A guest belongs to the worker thread that made it and is never shared. Every call runs
//! under the worker's deadline watch. A call that traps leaves the guest in an unknown state
//! (its allocator or JS heap may be half-updated), so the caller must drop it: every method
//! that can trap takes the guest by `&mut` and reports a [`Fault`] the caller acts on.

use std::sync::Arc;
use std::time::Duration;

use wasmer::sys::vm::TrapCode;
use wasmer::{
    AsStoreMut, Engine, FunctionEnv, Instance, Interrupter, Memory, Module, Pages, Store,
    TypedFunction, WASM_PAGE_SIZE,
};

use super::abi::{self, Op};
use super::engine::cap_refusals;
use super::stats::{Counters, LiveGuest};
use super::wasi::{self, ProcExit, WasiEnv};
use super::watchdog::WatchSlot;

/// Longest output read back from a guest. Outputs hold a snapshot, a context (at most
/// `max_context_bytes`, 400 kB by default) and effects; anything near this size is a bug.
const MAX_OUTPUT_BYTES: u32 = 32 << 20;

/// Why a guest call did not produce an output. After any fault the guest must be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Interrupted at its deadline.
    Deadline,
    /// Trapped after a `memory.grow` was refused at the cap.
    OutOfMemory,
    /// Any other trap, including `proc_exit`.
    Trap(String),
    /// The module did something the ABI forbids (e.g. an output outside its memory).
    Abi(String),
}

/// The memory and globals of a guest, copied to restore into fresh guests of the same module.
#[derive(Debug, Clone)]
pub struct Image {
    /// Size of the memory, in 64 KiB pages.
    pub pages: u32,
    /// Runs of bytes (offset, bytes) where the memory differs from a freshly instantiated one.
    pub runs: Vec<(u64, Box<[u8]>)>,
    /// Every global of the instance, in store order, as raw 128-bit values.
    pub globals: Vec<u128>,
    /// The input buffer the guest had handed out, valid in the copy too.
    pub input_buf: Option<(u32, u32)>,
}

impl Image {
    /// Bytes the image holds (its memory runs).
    pub fn bytes(&self) -> usize {
        self.runs.iter().map(|(_, b)| b.len()).sum()
    }
}

pub struct Guest {
    store: Store,
    instance: Instance,
    memory: Memory,
    input_fn: TypedFunction<i32, i32>,
    call_fn: TypedFunction<(i32, i32), i64>,
    /// Pointer and capacity of the guest's input buffer, once it handed one out.
    input_buf: Option<(u32, u32)>,
    interrupter: Interrupter,
    /// Held by guests that serve callers, for the `guests_live` gauge.
    live: Option<LiveGuest>,
}

impl Guest {
    /// Instantiates `module` (already validated with [`abi::validate`]) and checks its ABI
    /// version. Does not run `_initialize`. Errors are the module's fault.
    pub fn instantiate(
        engine: &Engine,
        module: &Module,
        machine: &Arc<str>,
    ) -> Result<Self, String> {
        let mut store = Store::new(engine.clone());
        let env = FunctionEnv::new(
            &mut store,
            WasiEnv {
                memory: None,
                machine: machine.clone(),
            },
        );
        let imports = wasi::imports(&mut store, module, &env)?;
        let instance = Instance::new(&mut store, module, &imports)
            .map_err(|e| format!("cannot instantiate the module: {e}"))?;
        let exports = &instance.exports;
        let memory = exports
            .get_memory(abi::EXPORT_MEMORY)
            .map_err(|e| e.to_string())?
            .clone();
        env.as_mut(&mut store).memory = Some(memory.clone());
        let typed = |e: wasmer::ExportError| e.to_string();
        let version = exports
            .get_typed_function::<(), i32>(&store, abi::EXPORT_VERSION)
            .map_err(typed)?;
        let input_fn = exports
            .get_typed_function(&store, abi::EXPORT_INPUT)
            .map_err(typed)?;
        let call_fn = exports
            .get_typed_function(&store, abi::EXPORT_CALL)
            .map_err(typed)?;
        match version.call(&mut store) {
            Ok(v) if abi::SUPPORTED_ABI_VERSIONS.contains(&v) => {}
            Ok(other) => {
                return Err(format!(
                    "the module speaks ABI version {other}; this host runs versions 1 to {}",
                    abi::ABI_VERSION
                ))
            }
            Err(e) => return Err(format!("statewire_abi_version trapped: {e}")),
        }
        let interrupter = store.interrupter();
        Ok(Self {
            store,
            instance,
            memory,
            input_fn,
            call_fn,
            input_buf: None,
            interrupter,
            live: None,
        })
    }

    /// Counts this guest in the `guests_live` gauge until it is dropped.
    pub fn counted(mut self, counters: &Arc<Counters>) -> Self {
        self.live = Some(LiveGuest::new(counters));
        self
    }

    /// Calls `_initialize` when the module exports it.
    pub fn initialize(&mut self, watch: &WatchSlot, limit: Duration) -> Result<(), Fault> {
        let Ok(init) = self
            .instance
            .exports
            .get_typed_function::<(), ()>(&self.store, abi::EXPORT_INITIALIZE)
        else {
            return Ok(());
        };
        self.watched(watch, limit, |store| init.call(store))
    }

    /// Runs `op` on `input` and returns the guest's output bytes.
    pub fn call(
        &mut self,
        op: Op,
        input: &[u8],
        watch: &WatchSlot,
        limit: Duration,
    ) -> Result<Vec<u8>, Fault> {
        let len = u32::try_from(input.len())
            .ok()
            .filter(|&l| l <= i32::MAX as u32)
            .ok_or_else(|| Fault::Abi("input larger than 2 GiB".into()))?;
        let ptr = match self.input_buf {
            Some((ptr, cap)) if cap >= len => ptr,
            _ => {
                let input_fn = self.input_fn.clone();
                let ptr = self.watched(watch, limit, |store| input_fn.call(store, len as i32))?;
                let ptr = ptr as u32;
                self.input_buf = Some((ptr, len));
                ptr
            }
        };
        let view = self.memory.view(&self.store);
        view.write(u64::from(ptr), input).map_err(|_| {
            Fault::Abi(format!(
                "statewire_input returned {ptr}, outside the memory for {len} bytes"
            ))
        })?;

        let call_fn = self.call_fn.clone();
        let packed = self.watched(watch, limit, |store| {
            call_fn.call(store, op as i32, len as i32)
        })?;
        let (out_ptr, out_len) = ((packed as u64 >> 32) as u32, packed as u64 as u32);
        if out_len > MAX_OUTPUT_BYTES {
            return Err(Fault::Abi(format!("output of {out_len} bytes")));
        }
        let mut output = vec![0u8; out_len as usize];
        let view = self.memory.view(&self.store);
        view.read(u64::from(out_ptr), &mut output).map_err(|_| {
            Fault::Abi(format!(
                "output at {out_ptr}+{out_len} lies outside the memory"
            ))
        })?;
        Ok(output)
    }

    /// Runs `f` on the store under the deadline and classifies a trap.
    fn watched<T>(
        &mut self,
        watch: &WatchSlot,
        limit: Duration,
        f: impl FnOnce(&mut Store) -> Result<T, wasmer::RuntimeError>,
    ) -> Result<T, Fault> {
        let refusals = cap_refusals();
        let armed = watch.arm(self.interrupter.clone(), limit);
        let result = f(&mut self.store);
        let interrupted = armed.disarm();
        result.map_err(|err| classify(err, interrupted, cap_refusals() != refusals))
    }

    /// Copies memory and globals, recording only the runs that differ from `baseline` (the
    /// memory of a fresh instance of the same module).
    pub fn image(&mut self, baseline: &[u8]) -> Image {
        let view = self.memory.view(&self.store);
        let pages = view.size().0;
        let memory = view
            .copy_to_vec()
            .expect("a memory view covers its own memory");
        let globals = self.store.objects_mut().as_u128_globals();
        Image {
            pages,
            runs: diff_runs(baseline, &memory),
            globals,
            input_buf: self.input_buf,
        }
    }

    /// The whole memory, for use as the baseline of [`Guest::image`].
    pub fn memory_copy(&self) -> Vec<u8> {
        let view = self.memory.view(&self.store);
        view.copy_to_vec()
            .expect("a memory view covers its own memory")
    }

    /// Makes this freshly instantiated guest a copy of the guest `image` was taken from.
    pub fn restore(&mut self, image: &Image) -> Result<(), String> {
        let current = self.memory.view(&self.store).size().0;
        if image.pages > current {
            self.memory
                .grow(&mut self.store, Pages(image.pages - current))
                .map_err(|e| format!("cannot grow memory to the loaded size: {e}"))?;
        }
        let view = self.memory.view(&self.store);
        for (offset, bytes) in &image.runs {
            view.write(*offset, bytes)
                .map_err(|e| format!("cannot restore memory: {e}"))?;
        }
        let objects = self.store.objects_mut();
        let count = objects.as_u128_globals().len();
        if count != image.globals.len() {
            return Err(format!(
                "the instance has {count} globals, the image {}",
                image.globals.len()
            ));
        }
        for (index, value) in image.globals.iter().enumerate() {
            // Same module, same store layout: each value goes back to the global of the same
            // type it was read from.
            objects.set_global_unchecked(index, *value);
        }
        self.input_buf = image.input_buf;
        Ok(())
    }
}

fn classify(err: wasmer::RuntimeError, interrupted: bool, hit_cap: bool) -> Fault {
    // An interrupt has once been reported as a memory fault, so the watchdog's word wins.
    if interrupted || err.clone().to_trap() == Some(TrapCode::HostInterrupt) {
        return Fault::Deadline;
    }
    if hit_cap {
        return Fault::OutOfMemory;
    }
    if let Some(exit) = err.downcast_ref::<ProcExit>() {
        return Fault::Trap(exit.to_string());
    }
    Fault::Trap(err.message())
}

/// Page-granular runs where `after` differs from `before` (bytes past `before`'s end count as
/// zero, as a grown memory starts zeroed). Adjacent differing pages merge into one run.
fn diff_runs(before: &[u8], after: &[u8]) -> Vec<(u64, Box<[u8]>)> {
    let page = WASM_PAGE_SIZE;
    let mut runs: Vec<(u64, Box<[u8]>)> = Vec::new();
    let mut run_start: Option<usize> = None;
    let flush = |start: Option<usize>, end: usize, runs: &mut Vec<(u64, Box<[u8]>)>| {
        if let Some(start) = start {
            runs.push((start as u64, after[start..end].into()));
        }
    };
    for offset in (0..after.len()).step_by(page) {
        let end = (offset + page).min(after.len());
        let new = &after[offset..end];
        let differs = match before.get(offset..end) {
            Some(old) => old != new,
            None => new.iter().any(|&b| b != 0),
        };
        match (differs, run_start) {
            (true, None) => run_start = Some(offset),
            (false, Some(_)) => flush(run_start.take(), offset, &mut runs),
            _ => {}
        }
    }
    flush(run_start, after.len(), &mut runs);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_runs_keep_only_changed_pages() {
        let page = WASM_PAGE_SIZE;
        let before = vec![0u8; 3 * page];
        let mut after = vec![0u8; 5 * page];
        after[page + 7] = 1;
        after[2 * page] = 2;
        after[4 * page + 1] = 3;
        let runs = diff_runs(&before, &after);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, page as u64);
        assert_eq!(runs[0].1.len(), 2 * page);
        assert_eq!(runs[1].0, 4 * page as u64);
        assert_eq!(runs[1].1[1], 3);
    }

    #[test]
    fn identical_memories_have_no_runs() {
        let a = vec![5u8; 2 * WASM_PAGE_SIZE];
        assert!(diff_runs(&a, &a).is_empty());
    }
}
