//! Helpers shared by the golden and CLI test files. Each test file uses a different subset.
#![allow(dead_code)]

pub mod cli;
pub mod effects;
pub mod machines;

use std::time::Duration;

/// Runs a blocking test body on its own thread and fails the test if it takes longer than
/// `timeout`.
pub fn within<T: Send + 'static>(
    timeout: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done_tx.send(body());
    });
    match done_rx.recv_timeout(timeout) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {timeout:?}")
        }
        // The body panicked: re-raise its panic here so the test reports it.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body sends its value before returning"),
        },
    }
}
