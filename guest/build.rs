//! Link settings of the guest module.
//!
//! The shadow stack (the stack in linear memory that C and Rust frames use) is 256 KiB instead
//! of Rust's default 1 MiB: QuickJS's stack limit stays far below it (src/engine.rs), and every
//! byte of it is copied whenever the host clones a loaded guest.
fn main() {
    println!("cargo:rustc-link-arg=-zstack-size=262144");
    println!("cargo:rerun-if-env-changed=STATEWIRE_GUEST_JS_DIR");
}
