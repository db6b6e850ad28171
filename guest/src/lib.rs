//! The JavaScript machine module of statewire: QuickJS, the glue between the machine ABI and
//! XState, and the pinned XState 4 and 5, compiled to `wasm32-wasip1` (docs/machine-abi.md).
//!
//! Layout:
//! - this file: the ABI exports and the input/output buffers;
//! - [`engine`]: the QuickJS runtime and context, and one ABI call through the JS glue;
//! - [`modules`]: which module specifiers exist and the sources behind them;
//! - [`answer`]: error answers built on the Rust side, when the glue cannot answer;
//! - [`random`]: the random source behind `crypto`.
//!
//! Everything lives in linear memory (the host may copy a loaded guest's memory into a fresh
//! instance), and nothing here panics on bad input: a panic aborts, which the host sees as a
//! trap and must recover from by discarding the instance.

mod answer;
mod engine;
mod modules;
mod random;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

/// The ABI version this module implements.
const ABI_VERSION: i32 = 2;

thread_local! {
    /// Where the host writes each call's input; only ever grows, so a pointer the host caches
    /// stays valid until it asks for a bigger buffer.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The last call's answer, kept until the next call.
    static OUTPUT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `statewire_abi_version() -> i32`: the ABI this module implements.
#[no_mangle]
pub extern "C" fn statewire_abi_version() -> i32 {
    ABI_VERSION
}

/// `statewire_input(len) -> ptr`: a buffer of at least `len` bytes for the next call's input.
#[no_mangle]
pub extern "C" fn statewire_input(len: i32) -> i32 {
    let wanted = usize::try_from(len).unwrap_or(0);
    INPUT.with(|input| {
        let mut input = input.borrow_mut();
        if input.len() < wanted {
            input.resize(wanted, 0);
        }
        input.as_mut_ptr() as usize as i32
    })
}

/// `statewire_call(op, len) -> (ptr << 32) | out_len`: runs `op` on the first `len` input
/// bytes; the answer is UTF-8 JSON, valid until the next call.
#[no_mangle]
pub extern "C" fn statewire_call(op: i32, len: i32) -> i64 {
    let answer = INPUT.with(|input| {
        let input = input.borrow();
        match usize::try_from(len).ok().and_then(|len| input.get(..len)) {
            Some(bytes) => engine::call(op, bytes),
            None => answer::error(
                answer::Kind::BadInput,
                "input length is larger than the input buffer",
            ),
        }
    });
    OUTPUT.with(|output| {
        let mut output = output.borrow_mut();
        *output = answer;
        let ptr = output.as_ptr() as usize as u64;
        let len = output.len() as u64;
        ((ptr << 32) | len) as i64
    })
}
