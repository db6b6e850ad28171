//! The deadline watchdog: one thread that interrupts guest calls running past their deadline.
//!
//! Each worker owns one [`WatchSlot`] and arms it around every guest call. When a call's
//! deadline passes, the watchdog sends wasmer's host interrupt (a signal to the worker thread)
//! and repeats it every [`RETRY_INTERVAL`] until the call returns, because wasmer may miss a
//! single interrupt (for example while the guest is inside a host function).
//!
//! The watchdog sleeps until the earliest armed deadline, or indefinitely when nothing is
//! armed; arming only wakes it when the new deadline is earlier than the one it sleeps to.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use wasmer::Interrupter;

const RETRY_INTERVAL: Duration = Duration::from_millis(5);

struct Armed {
    due: Instant,
    interrupter: Interrupter,
    fired: bool,
}

struct State {
    slots: Vec<Option<Armed>>,
    /// When the watchdog thread will next wake on its own; `None` while it sleeps
    /// indefinitely.
    sleeping_until: Option<Instant>,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Owns the watchdog thread; dropping it stops the thread.
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the thread with `slots` slots, one per worker.
    pub fn start(slots: usize) -> std::io::Result<(Self, Vec<WatchSlot>)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: (0..slots).map(|_| None).collect(),
                sleeping_until: None,
                stopped: false,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("statewire-wasm-watchdog".into())
            .spawn({
                let shared = shared.clone();
                move || watch(&shared)
            })?;
        let handles = (0..slots)
            .map(|index| WatchSlot {
                shared: shared.clone(),
                index,
            })
            .collect();
        Ok((
            Self {
                shared,
                thread: Some(thread),
            },
            handles,
        ))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.state.lock().stopped = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only ever waits on the condvar, so it stops promptly.
            let _ = thread.join();
        }
    }
}

fn watch(shared: &Shared) {
    let mut state = shared.state.lock();
    while !state.stopped {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for armed in state.slots.iter_mut().flatten() {
            if armed.due <= now {
                armed.interrupter.interrupt();
                armed.fired = true;
                armed.due = now + RETRY_INTERVAL;
            }
            next = Some(next.map_or(armed.due, |n| n.min(armed.due)));
        }
        state.sleeping_until = next;
        match next {
            Some(due) => {
                shared.wake.wait_until(&mut state, due);
            }
            None => shared.wake.wait(&mut state),
        }
    }
}

/// A worker's handle on the watchdog.
pub struct WatchSlot {
    shared: Arc<Shared>,
    index: usize,
}

impl WatchSlot {
    /// Watches the call about to start on the store behind `interrupter`.
    /// The call must end, and [`Armed::disarm`] be called, before the slot is armed again.
    pub fn arm(&self, interrupter: Interrupter, limit: Duration) -> ArmedCall<'_> {
        let due = Instant::now() + limit;
        let mut state = self.shared.state.lock();
        state.slots[self.index] = Some(Armed {
            due,
            interrupter,
            fired: false,
        });
        if state.sleeping_until.is_none_or(|t| due < t) {
            self.shared.wake.notify_one();
        }
        ArmedCall { slot: self }
    }

    fn disarm(&self) -> bool {
        let mut state = self.shared.state.lock();
        state.slots[self.index].take().is_some_and(|a| a.fired)
    }
}

/// A watched call; disarms on drop so a panic cannot leave a stale deadline.
pub struct ArmedCall<'a> {
    slot: &'a WatchSlot,
}

impl ArmedCall<'_> {
    /// Stops watching; true when the watchdog interrupted the call.
    pub fn disarm(self) -> bool {
        let fired = self.slot.disarm();
        std::mem::forget(self);
        fired
    }
}

impl Drop for ArmedCall<'_> {
    fn drop(&mut self) {
        self.slot.disarm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_guest_loop_is_interrupted_at_its_deadline() {
        let engine = super::super::engine::build_engine(1 << 20);
        let mut store = wasmer::Store::new(engine);
        let module = wasmer::Module::new(
            &store,
            r#"(module (func (export "spin") (loop $l (br $l))))"#,
        )
        .unwrap();
        let instance = wasmer::Instance::new(&mut store, &module, &wasmer::Imports::new()).unwrap();
        let spin = instance
            .exports
            .get_typed_function::<(), ()>(&store, "spin")
            .unwrap();

        let (_watchdog, slots) = Watchdog::start(1).unwrap();
        let started = Instant::now();
        let armed = slots[0].arm(store.interrupter(), Duration::from_millis(50));
        let err = spin.call(&mut store).unwrap_err();
        assert!(armed.disarm());
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(
            err.to_trap(),
            Some(wasmer::sys::vm::TrapCode::HostInterrupt)
        );
    }

    #[test]
    fn a_call_that_returns_in_time_is_not_interrupted() {
        let engine = super::super::engine::build_engine(1 << 20);
        let store = wasmer::Store::new(engine);
        let (_watchdog, slots) = Watchdog::start(1).unwrap();
        let armed = slots[0].arm(store.interrupter(), Duration::from_secs(5));
        assert!(!armed.disarm());
    }
}
