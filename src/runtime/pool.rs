//! Templates and warm guests.
//!
//! A template is a machine loaded once: a guest is instantiated, configured and given the
//! machine's source, then its memory and globals are copied into an [`Image`] and the guest is
//! dropped; the template guest never serves a call, so no caller's trap can spoil it. New
//! guests are instantiated and restored from the image (well under a millisecond), instead of
//! loading the machine again (milliseconds for a JavaScript bundle).
//!
//! Templates are shared by all workers, at most [`TEMPLATES`] of them (least recently used
//! first out). Warm guests are owned by one worker each: a [`MachinePool`] per machine per
//! worker, at most [`MACHINES_PER_WORKER`] pools per worker.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::IgnoredAny;
use wasmer::{Engine, Module};

use super::abi::{self, abi_violation, Loaded, Op};
use super::guest::{Fault, Guest, Image};
use super::lru::Lru;
use super::stats::{bump, Counters};
use super::watchdog::WatchSlot;
use super::{BundleInfo, CodeKind, MachineCode, RuntimeConfig, RuntimeError};

/// Templates kept in memory, shared by all workers. Not configurable yet: a JavaScript
/// template holds about 2 MiB, so this bounds templates at roughly a quarter GiB.
pub const TEMPLATES: usize = 128;

/// Machines with warm guests per worker. Not configurable yet; a warm JavaScript guest
/// touches about 2 MiB.
pub const MACHINES_PER_WORKER: usize = 64;

/// A machine loaded once, ready to be copied into new guests.
pub struct Template {
    pub engine: Engine,
    pub module: Module,
    /// Hash prefix of the machine, for logs.
    pub machine: Arc<str>,
    pub kind: CodeKind,
    pub info: BundleInfo,
    pub image: Image,
}

/// The first 12 hex digits of a machine hash, as logged.
pub fn machine_label(hash: &str) -> Arc<str> {
    hash[..hash.len().min(12)].into()
}

/// The error a caller sees for a guest fault.
pub fn fault_error(fault: Fault, kind: CodeKind, limit: Duration) -> RuntimeError {
    match fault {
        Fault::Deadline => RuntimeError::Deadline(limit),
        Fault::OutOfMemory => RuntimeError::OutOfMemory,
        Fault::Trap(message) => RuntimeError::Trap(message),
        Fault::Abi(message) => abi_violation(kind, message),
    }
}

/// The `heapLimitBytes` given to `configure`: the memory cap less room for the guest's stack,
/// static data and I/O buffers, so an engine with its own heap limit (QuickJS) reports
/// `out-of-memory` cleanly before the linear memory hits the cap.
pub fn heap_limit_bytes(memory_limit_bytes: u64) -> u64 {
    let reserve_bytes = (memory_limit_bytes / 8).max(4 << 20);
    memory_limit_bytes
        .saturating_sub(reserve_bytes)
        .max(1 << 20)
}

impl Template {
    /// Loads `code` into a fresh guest of `module` and takes its image.
    /// `module` must already have passed [`abi::validate`].
    pub fn build(
        engine: &Engine,
        module: Module,
        code: &MachineCode,
        config: &RuntimeConfig,
        watch: &WatchSlot,
    ) -> Result<Self, RuntimeError> {
        let machine = machine_label(&code.hash);
        let limit = config.call_deadline;
        let fault = |f: Fault| fault_error(f, code.kind, limit);
        let mut guest =
            Guest::instantiate(engine, &module, &machine).map_err(|e| match code.kind {
                CodeKind::RawWasm => RuntimeError::InvalidBundle(e),
                CodeKind::JsBundle => RuntimeError::Internal(format!("JavaScript guest: {e}")),
            })?;
        let baseline = guest.memory_copy();
        guest.initialize(watch, limit).map_err(fault)?;

        let configure = serde_json::json!({
            "heapLimitBytes": heap_limit_bytes(config.memory_limit_bytes),
        });
        let output = guest
            .call(
                Op::Configure,
                configure.to_string().as_bytes(),
                watch,
                limit,
            )
            .map_err(fault)?;
        match abi::decode::<IgnoredAny>(&output).map_err(|e| abi_violation(code.kind, e))? {
            Ok(_) => {}
            Err(e) if e.is_unsupported_op() => {}
            Err(e) => return Err(e.into_runtime_error(Op::Configure)),
        }

        let source: &[u8] = match code.kind {
            CodeKind::JsBundle => &code.bytes,
            CodeKind::RawWasm => &[],
        };
        let output = guest.call(Op::Load, source, watch, limit).map_err(fault)?;
        let loaded: Loaded = abi::decode(&output)
            .map_err(|e| abi_violation(code.kind, e))?
            .map_err(|e| e.into_runtime_error(Op::Load))?;
        if !abi::SUPPORTED_ABI_VERSIONS.contains(&loaded.abi) {
            return Err(RuntimeError::InvalidBundle(format!(
                "load reported ABI version {}; this host runs versions 1 to {}",
                loaded.abi,
                abi::ABI_VERSION
            )));
        }
        let info = BundleInfo {
            kind: code.kind,
            xstate_major: loaded.xstate_major,
            exports: loaded.exports,
        };
        let image = guest.image(&baseline);
        Ok(Self {
            engine: engine.clone(),
            module,
            machine,
            kind: code.kind,
            info,
            image,
        })
    }

    /// A new guest in the state the template was in right after `load`.
    pub fn new_guest(&self, counters: &Arc<Counters>) -> Result<Guest, RuntimeError> {
        let restored =
            Guest::instantiate(&self.engine, &self.module, &self.machine).and_then(|mut guest| {
                guest.restore(&self.image)?;
                Ok(guest)
            });
        let guest = restored.map_err(|e| {
            RuntimeError::Internal(format!(
                "cannot copy a loaded machine into a new guest: {e}"
            ))
        })?;
        bump(&counters.guests_created);
        Ok(guest.counted(counters))
    }
}

/// One build at a time per machine: later callers wait and reuse the result.
type Slot = Arc<Mutex<Option<Arc<Template>>>>;

/// The templates shared by all workers.
pub struct Templates {
    slots: Mutex<Lru<Arc<str>, Slot>>,
}

impl Templates {
    pub fn new() -> Self {
        Self {
            slots: Mutex::new(Lru::new(TEMPLATES)),
        }
    }

    /// The template for `hash`, built with `build` if there is none. Failed builds are not
    /// remembered: the next caller tries again.
    pub fn get_or_build(
        &self,
        hash: &Arc<str>,
        build: impl FnOnce() -> Result<Template, RuntimeError>,
    ) -> Result<Arc<Template>, RuntimeError> {
        let slot = self
            .slots
            .lock()
            .get_or_insert_with(hash, Slot::default)
            .clone();
        let mut slot = slot.lock();
        if let Some(template) = slot.as_ref() {
            return Ok(template.clone());
        }
        let template = Arc::new(build()?);
        *slot = Some(template.clone());
        Ok(template)
    }
}

/// A worker's warm guests of one machine.
pub struct MachinePool {
    pub template: Arc<Template>,
    idle: Vec<Guest>,
}

impl MachinePool {
    pub fn new(template: Arc<Template>) -> Self {
        Self {
            template,
            idle: Vec::new(),
        }
    }

    /// An idle guest, or a new one from the template.
    pub fn take(&mut self, counters: &Arc<Counters>) -> Result<Guest, RuntimeError> {
        match self.idle.pop() {
            Some(guest) => Ok(guest),
            None => self.template.new_guest(counters),
        }
    }

    /// Returns a guest whose last call ended cleanly; beyond `max_idle` it is dropped.
    pub fn give_back(&mut self, guest: Guest, max_idle: usize) {
        if self.idle.len() < max_idle {
            self.idle.push(guest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_limit_leaves_room_below_the_cap() {
        assert_eq!(heap_limit_bytes(128 << 20), 112 << 20);
        assert_eq!(heap_limit_bytes(16 << 20), 12 << 20);
        assert_eq!(heap_limit_bytes(2 << 20), 1 << 20);
    }
}
