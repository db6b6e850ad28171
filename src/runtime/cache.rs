//! Compiled modules: compiled once with Cranelift, kept in memory, and cached on disk so a
//! restart deserializes (milliseconds) instead of recompiling (about half a second for the
//! JavaScript guest).
//!
//! A cache file is named by the SHA-256 of the wasm bytes and a digest of the engine
//! fingerprint (wasmer release, compiler settings, target and CPU features). It holds a fixed
//! 64-byte header (magic, then the SHA-256 of the payload) and the payload `Module::serialize`
//! produced. A file whose header or digest does not match, or that wasmer refuses, is deleted
//! and the module compiled again. Files are written to a temporary name and renamed, so a
//! reader never sees half a file.
//!
//! Eviction: at most [`MODULES_IN_MEMORY`] compiled modules stay in memory (least recently
//! used first out); files on disk are never deleted except when found bad.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmer::{CompileError, Engine, Module};

use super::engine::engine_fingerprint;
use super::lru::Lru;
use super::stats::{bump, Counters};

/// Compiled modules kept in memory. Not configurable yet: each machine version with raw wasm
/// has its own module (a few MB of code), while every JavaScript machine shares one.
pub const MODULES_IN_MEMORY: usize = 64;

const MAGIC: &[u8; 8] = b"SWMODv1\n";
/// Magic, SHA-256 of the payload, zero padding. 64 bytes keep the payload as aligned as the
/// buffer it is read into, which wasmer's archive reader needs.
const HEADER_BYTES: usize = 64;

/// One slot per module hash; its lock makes concurrent callers wait for a single compile.
type Slot = Arc<Mutex<Option<Module>>>;

pub struct ModuleCache {
    engine: Engine,
    /// `None` when the directory could not be created: modules are then compiled every start.
    dir: Option<PathBuf>,
    /// Hex digest of the engine fingerprint, the second half of every file name.
    fingerprint_hex: String,
    slots: Mutex<Lru<Arc<str>, Slot>>,
    counters: Arc<Counters>,
}

impl ModuleCache {
    pub fn new(engine: Engine, dir: &Path, counters: Arc<Counters>) -> Self {
        let dir = match std::fs::create_dir_all(dir) {
            Ok(()) => Some(dir.to_path_buf()),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "artifact cache unavailable; modules will be compiled on every start");
                None
            }
        };
        let fingerprint_hex = hex(&Sha256::digest(engine_fingerprint(&engine)))[..16].to_owned();
        Self {
            engine,
            dir,
            fingerprint_hex,
            slots: Mutex::new(Lru::new(MODULES_IN_MEMORY)),
            counters,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled module for `wasm`, whose lowercase hex SHA-256 is `wasm_hash`.
    /// Compiles at most once per hash at a time; other callers for the same hash wait.
    pub fn module(&self, wasm_hash: &Arc<str>, wasm: &[u8]) -> Result<Module, CompileError> {
        let slot = self
            .slots
            .lock()
            .get_or_insert_with(wasm_hash, Slot::default)
            .clone();
        let mut slot = slot.lock();
        if let Some(module) = slot.as_ref() {
            return Ok(module.clone());
        }
        let path = self.path_for(wasm_hash);
        let module = match path.as_deref().and_then(|p| self.load(p)) {
            Some(module) => module,
            None => {
                let module = self.compile(wasm_hash, wasm)?;
                if let Some(path) = &path {
                    self.store(path, &module);
                }
                module
            }
        };
        *slot = Some(module.clone());
        Ok(module)
    }

    fn path_for(&self, wasm_hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{wasm_hash}-{}.module", self.fingerprint_hex)))
    }

    fn compile(&self, wasm_hash: &str, wasm: &[u8]) -> Result<Module, CompileError> {
        let started = Instant::now();
        let module = Module::new(&self.engine, wasm)?;
        bump(&self.counters.artifacts_compiled);
        tracing::info!(
            module = &wasm_hash[..12],
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled machine module"
        );
        Ok(module)
    }

    /// The module from the cache file at `path`, or `None` when absent or bad (then deleted).
    fn load(&self, path: &Path) -> Option<Module> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read cached module");
                return None;
            }
        };
        match self.decode(bytes) {
            Ok(module) => {
                bump(&self.counters.artifacts_loaded);
                Some(module)
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason = %reason,
                    "discarding bad cached module");
                bump(&self.counters.artifacts_discarded);
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %e,
                        "cannot delete bad cached module");
                }
                None
            }
        }
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<Module, String> {
        if bytes.len() < HEADER_BYTES || &bytes[..MAGIC.len()] != MAGIC {
            return Err("missing header".into());
        }
        let digest = Sha256::digest(&bytes[HEADER_BYTES..]);
        if digest.as_slice() != &bytes[MAGIC.len()..MAGIC.len() + 32] {
            return Err("payload digest does not match".into());
        }
        let payload = bytes::Bytes::from(bytes).slice(HEADER_BYTES..);
        // SAFETY: the payload is byte for byte what `Module::serialize` produced in `store`
        // for an engine with this fingerprint (the file name says so and the digest proves the
        // bytes are intact); wasmer still checks its own header and version.
        unsafe { Module::deserialize(&self.engine, payload) }.map_err(|e| e.to_string())
    }

    /// Writes `module` to `path` through a temporary file; failures are logged, not returned,
    /// because the cache is only an optimization.
    fn store(&self, path: &Path, module: &Module) {
        let payload = match module.serialize() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serialize compiled module");
                return;
            }
        };
        let mut file = Vec::with_capacity(HEADER_BYTES + payload.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&Sha256::digest(&payload));
        file.resize(HEADER_BYTES, 0);
        file.extend_from_slice(&payload);

        let tmp = path.with_extension(format!(
            "tmp-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let written = std::fs::write(&tmp, &file).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write cached module");
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::engine::build_engine;

    const WAT: &str = r#"(module (func (export "answer") (result i32) (i32.const 42)))"#;

    fn cache(dir: &Path) -> (ModuleCache, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let cache = ModuleCache::new(build_engine(1 << 24), dir, counters.clone());
        (cache, counters)
    }

    fn answer(module: &Module, engine: &Engine) -> i32 {
        let mut store = wasmer::Store::new(engine.clone());
        let instance = wasmer::Instance::new(&mut store, module, &wasmer::Imports::new()).unwrap();
        let f = instance
            .exports
            .get_typed_function::<(), i32>(&store, "answer")
            .unwrap();
        f.call(&mut store).unwrap()
    }

    #[test]
    fn a_second_cache_on_the_same_directory_loads_instead_of_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = wasmer::wat2wasm(WAT.as_bytes()).unwrap();
        let hash: Arc<str> = hex(&Sha256::digest(&wasm)).into();

        let (first, counters) = cache(dir.path());
        first.module(&hash, &wasm).unwrap();
        first.module(&hash, &wasm).unwrap();
        assert_eq!(counters.snapshot().artifacts_compiled, 1);

        let (second, counters) = cache(dir.path());
        let module = second.module(&hash, &wasm).unwrap();
        let stats = counters.snapshot();
        assert_eq!((stats.artifacts_compiled, stats.artifacts_loaded), (0, 1));
        assert_eq!(answer(&module, second.engine()), 42);
    }

    #[test]
    fn a_corrupt_cache_file_is_discarded_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = wasmer::wat2wasm(WAT.as_bytes()).unwrap();
        let hash: Arc<str> = hex(&Sha256::digest(&wasm)).into();
        cache(dir.path()).0.module(&hash, &wasm).unwrap();

        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "module"))
            .unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();

        let (again, counters) = cache(dir.path());
        let module = again.module(&hash, &wasm).unwrap();
        let stats = counters.snapshot();
        assert_eq!(stats.artifacts_discarded, 1);
        assert_eq!(stats.artifacts_compiled, 1);
        assert_eq!(answer(&module, again.engine()), 42);

        let (third, counters) = cache(dir.path());
        third.module(&hash, &wasm).unwrap();
        assert_eq!(counters.snapshot().artifacts_loaded, 1);
    }

    #[test]
    fn a_truncated_cache_file_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = wasmer::wat2wasm(WAT.as_bytes()).unwrap();
        let hash: Arc<str> = hex(&Sha256::digest(&wasm)).into();
        let (first, _) = cache(dir.path());
        let path = first.path_for(&hash).unwrap();
        std::fs::write(&path, b"SWMODv1\nshort").unwrap();
        let (again, counters) = cache(dir.path());
        again.module(&hash, &wasm).unwrap();
        assert_eq!(counters.snapshot().artifacts_discarded, 1);
    }
}
