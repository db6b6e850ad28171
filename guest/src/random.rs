//! Random bytes for `crypto.getRandomValues` and `crypto.randomUUID`.
//!
//! In the wasm module they come from WASI `random_get`, asked on every call: the host may copy
//! one loaded guest's memory into many instances, so a generator seeded once in linear memory
//! would repeat the same values in all of them. Natively (the engine's tests) they come from
//! the operating system.

/// Most bytes one call hands out; `crypto.getRandomValues` refuses larger arrays first.
pub const MAX_RANDOM_BYTES: usize = 65536;

#[cfg(target_os = "wasi")]
mod source {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        #[link_name = "random_get"]
        fn wasi_random_get(buf: *mut u8, len: usize) -> i32;
    }

    pub fn fill(buf: &mut [u8]) -> Result<(), String> {
        // SAFETY: the pointer and length describe `buf`, which stays borrowed for the call;
        // random_get only writes within them.
        let errno = unsafe { wasi_random_get(buf.as_mut_ptr(), buf.len()) };
        if errno == 0 {
            Ok(())
        } else {
            Err(format!("random_get failed with errno {errno}"))
        }
    }
}

#[cfg(not(target_os = "wasi"))]
mod source {
    use std::io::Read;

    pub fn fill(buf: &mut [u8]) -> Result<(), String> {
        std::fs::File::open("/dev/urandom")
            .and_then(|mut file| file.read_exact(buf))
            .map_err(|e| format!("cannot read /dev/urandom: {e}"))
    }
}

/// `len` random bytes (at most [`MAX_RANDOM_BYTES`]).
pub fn bytes(len: usize) -> Result<Vec<u8>, String> {
    if len > MAX_RANDOM_BYTES {
        return Err(format!(
            "at most {MAX_RANDOM_BYTES} random bytes can be asked for at once"
        ));
    }
    let mut buf = vec![0; len];
    source::fill(&mut buf)?;
    Ok(buf)
}
