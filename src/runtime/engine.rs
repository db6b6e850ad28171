//! The wasmer engine: Cranelift, and tunables that cap every linear memory.
//!
//! Machine modules declare no maximum memory, so the cap is imposed here: every memory a
//! module defines gets `maximum = min(declared, cap)`. A `memory.grow` past the cap fails the
//! way the wasm spec says (it returns -1); the guest then either reports `out-of-memory` or
//! traps. To tell the second case from other traps, each refusal is counted on the thread that
//! ran the `memory.grow` ([`cap_refusals`]); calls run on one thread from start to end, so a
//! change of that counter across a call means the call hit the cap.

use std::cell::Cell;
use std::ptr::NonNull;

use wasmer::sys::vm::{
    LinearMemory, MemoryStyle, TableStyle, Trap, VMConfig, VMMemory, VMMemoryDefinition, VMTable,
    VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Cranelift, EngineBuilder, NativeEngineExt, Tunables};
use wasmer::{Engine, MemoryError, MemoryType, Pages, TableType, WASM_PAGE_SIZE};

/// The wasmer release this build links, part of every compiled-artifact cache key.
/// It must follow the `=` pin in Cargo.toml (a unit test checks).
pub const WASMER_VERSION: &str = "7.4.2";

/// Native stack that wasm code runs on. wasmer's default is 1 MiB; QuickJS recursing inside C
/// (`JSON.parse` or `JSON.stringify` of deeply nested values) needs about 11 bytes of native
/// stack per byte of its own stack limit, so 8 MiB leaves room for the largest limit the
/// JavaScript guest accepts (192 KiB). wasmer keeps these stacks per thread and reuses them.
pub const WASM_STACK_BYTES: usize = 8 << 20;

static VM_CONFIG: VMConfig = VMConfig {
    wasm_stack_size: Some(WASM_STACK_BYTES),
};

thread_local! {
    static CAP_REFUSALS: Cell<u64> = const { Cell::new(0) };
}

/// How many `memory.grow` requests this thread has refused because of the cap.
pub fn cap_refusals() -> u64 {
    CAP_REFUSALS.with(Cell::get)
}

/// A Cranelift engine whose memories are capped at `memory_limit_bytes` (rounded down to whole
/// 64 KiB pages, at least one page).
pub fn build_engine(memory_limit_bytes: u64) -> Engine {
    let page_bytes = WASM_PAGE_SIZE as u64;
    let pages = (memory_limit_bytes / page_bytes).clamp(1, u64::from(u32::from(u16::MAX) + 1));
    let mut engine: Engine = EngineBuilder::new(Cranelift::default()).into();
    engine.set_tunables(CappedTunables {
        base: BaseTunables::new(),
        max_pages: Pages(pages as u32),
    });
    engine
}

/// Everything about the engine that changes compiled code: compiler and its settings,
/// artifact format, target triple and CPU features, and the wasmer release.
pub fn engine_fingerprint(engine: &Engine) -> String {
    let target = engine.target();
    format!(
        "wasmer={WASMER_VERSION};compiler={};format={};triple={};cpu={:?}",
        engine.deterministic_id(),
        engine.artifact_format(),
        target.triple(),
        target.cpu_features(),
    )
}

/// Delegates to wasmer's base tunables, with every memory's maximum clamped to `max_pages` and
/// a larger native stack for wasm ([`WASM_STACK_BYTES`]).
/// The clamp does not change compiled code (memories are always the static style), so the cap
/// is not part of the artifact cache key.
struct CappedTunables {
    base: BaseTunables,
    max_pages: Pages,
}

impl CappedTunables {
    fn capped(&self, ty: &MemoryType) -> MemoryType {
        let mut capped = *ty;
        capped.maximum = Some(ty.maximum.map_or(self.max_pages, |m| m.min(self.max_pages)));
        capped
    }

    fn wrap(&self, inner: VMMemory) -> VMMemory {
        VMMemory(Box::new(CappedMemory {
            inner,
            max_pages: self.max_pages,
        }))
    }
}

impl Tunables for CappedTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(&self.capped(memory))
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn vmconfig(&self) -> &VMConfig {
        &VM_CONFIG
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        let memory = self.base.create_host_memory(&self.capped(ty), style)?;
        Ok(self.wrap(memory))
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        // SAFETY: forwarded unchanged from wasmer, which upholds the location's validity.
        let memory = unsafe {
            self.base
                .create_vm_memory(&self.capped(ty), style, vm_definition_location)?
        };
        Ok(self.wrap(memory))
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: forwarded unchanged from wasmer, which upholds the location's validity.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }
}

/// A linear memory that counts the growth it refuses because of the cap.
/// Shared (threads) memories are refused by module validation, so waiting and notifying keep
/// the trait's defaults.
#[derive(Debug)]
struct CappedMemory {
    inner: VMMemory,
    max_pages: Pages,
}

impl CappedMemory {
    fn note_refusal(&self, wanted_pages: u64) {
        if wanted_pages > u64::from(self.max_pages.0) {
            CAP_REFUSALS.with(|n| n.set(n.get() + 1));
        }
    }
}

impl LinearMemory for CappedMemory {
    fn ty(&self) -> MemoryType {
        self.inner.ty()
    }

    fn size(&self) -> Pages {
        self.inner.size()
    }

    fn style(&self) -> MemoryStyle {
        self.inner.style()
    }

    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let wanted_pages = u64::from(self.size().0) + u64::from(delta.0);
        self.inner.grow(delta).inspect_err(|_| {
            self.note_refusal(wanted_pages);
        })
    }

    fn grow_at_least(&mut self, min_size: u64) -> Result<(), MemoryError> {
        let wanted_pages = min_size.div_ceil(WASM_PAGE_SIZE as u64);
        self.inner.grow_at_least(min_size).inspect_err(|_| {
            self.note_refusal(wanted_pages);
        })
    }

    fn reset(&mut self) -> Result<(), MemoryError> {
        self.inner.reset()
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.inner.vmmemory()
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        self.inner.try_clone().map(|m| m.0)
    }

    unsafe fn initialize_with_data(&self, start: usize, data: &[u8]) -> Result<(), Trap> {
        // SAFETY: forwarded unchanged; the caller upholds the contract of data initialization.
        unsafe { self.inner.initialize_with_data(start, data) }
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        self.inner.copy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmer_version_follows_the_cargo_pin() {
        let manifest = include_str!("../../Cargo.toml");
        let pin = format!("wasmer = {{ version = \"={WASMER_VERSION}\"");
        assert!(
            manifest.contains(&pin),
            "Cargo.toml no longer pins wasmer {WASMER_VERSION}"
        );
    }

    #[test]
    fn fingerprint_names_compiler_and_target() {
        let engine = build_engine(1 << 20);
        let fp = engine_fingerprint(&engine);
        assert!(fp.contains("wasmer=7.4.2"), "{fp}");
        assert!(fp.contains("cranelift"), "{fp}");
        assert!(fp.contains("x86_64") || fp.contains("aarch64"), "{fp}");
    }

    #[test]
    fn memories_cannot_grow_past_the_cap() {
        let engine = build_engine(4 * 65_536);
        let mut store = wasmer::Store::new(engine);
        let module = wasmer::Module::new(
            &store,
            r#"(module (memory (export "memory") 1)
                 (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
        )
        .unwrap();
        let instance = wasmer::Instance::new(&mut store, &module, &wasmer::Imports::new()).unwrap();
        let grow = instance
            .exports
            .get_typed_function::<i32, i32>(&store, "grow")
            .unwrap();
        let before = cap_refusals();
        assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
        assert_eq!(cap_refusals(), before);
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        assert_eq!(cap_refusals(), before + 1);
    }
}
