//! A worker's pinned guests: the worker side of [`Pinned`](super::Pinned).
//!
//! A guest pinned by a step stays on the worker that ran the step (wasmer stores are not
//! `Send`), in that worker's [`Pinboard`], under an id unique on that worker. Handles send
//! [`PinMessage`]s to the worker's own queue: a call, or the release of a guest whose handle
//! was dropped.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use super::abi::Op;
use super::guest::Guest;
use super::outbox::{self, EffectError, Outbox};
use super::pinned::Pinned;
use super::pool::Template;
use super::stats::PinSlot;
use super::watchdog::WatchSlot;
use super::workers::{call_guest, count_out_of_memory, decode_reply, Reply, Shared};
use super::{unexpected_reply, RuntimeError, Step};

/// What a handle asks of the worker that holds its guest.
pub enum PinMessage {
    Call(PinCall),
    /// The handle was dropped: drop the guest.
    Release(u64),
}

/// One call on pinned guest `pin`.
pub struct PinCall {
    pub pin: u64,
    pub op: Op,
    pub input: Vec<u8>,
    pub reply_tx: oneshot::Sender<PinReply>,
}

pub struct PinReply {
    /// Whether the guest is still there for further calls.
    pub kept: bool,
    pub result: Result<Answer, EffectError>,
}

pub enum Answer {
    Step(Step),
    Outbox(Outbox),
}

struct PinnedGuest {
    guest: Guest,
    template: Arc<Template>,
}

/// The guests pinned on one worker.
pub struct Pinboard {
    guests: HashMap<u64, PinnedGuest>,
    last_pin: u64,
    /// The worker's own queue, handed to the handles it makes.
    pins_tx: Sender<PinMessage>,
}

impl Pinboard {
    pub fn new(pins_tx: Sender<PinMessage>) -> Self {
        Self {
            guests: HashMap::new(),
            last_pin: 0,
            pins_tx,
        }
    }

    /// Pins `guest`, which just answered `step` with a token, and makes its handle; or drops
    /// the guest when `max_pinned` handles hold guests already.
    pub fn adopt(
        &mut self,
        shared: &Shared,
        template: &Arc<Template>,
        guest: Guest,
        step: Step,
    ) -> Result<Reply, RuntimeError> {
        let config = &shared.config;
        let limit = config.max_pinned;
        let slot = PinSlot::try_take(&shared.counters, limit)
            .ok_or(RuntimeError::TooManyPinned { limit })?;
        self.last_pin += 1;
        let pin = self.last_pin;
        let template = template.clone();
        let machine = template.machine.clone();
        tracing::debug!(%machine, pin, token = step.token, "guest pinned");
        self.guests.insert(pin, PinnedGuest { guest, template });
        let tx = self.pins_tx.clone();
        let handle = Pinned::new(tx, pin, machine, config.max_context_bytes, slot);
        Ok(Reply::PinnedStep(step, Some(handle)))
    }

    pub fn handle(&mut self, shared: &Shared, watch: &WatchSlot, message: PinMessage) {
        match message {
            PinMessage::Call(call) => self.call(shared, watch, call),
            PinMessage::Release(pin) => {
                if let Some(pinned) = self.guests.remove(&pin) {
                    tracing::debug!(machine = %pinned.template.machine, pin,
                        "pinned guest released");
                }
            }
        }
    }

    /// Runs a call and answers it. The guest is dropped when the call spoiled it, and when the
    /// caller stopped waiting: what the call asked for would be lost with the answer.
    fn call(&mut self, shared: &Shared, watch: &WatchSlot, call: PinCall) {
        let PinCall {
            pin,
            op,
            input,
            reply_tx,
        } = call;
        if reply_tx.is_closed() {
            self.guests.remove(&pin);
            return;
        }
        let Some(pinned) = self.guests.get_mut(&pin) else {
            let error = RuntimeError::GuestLost("its worker no longer holds it".into());
            let _ = reply_tx.send(PinReply {
                kept: false,
                result: Err(error.into()),
            });
            return;
        };
        let machine = pinned.template.machine.clone();
        let started = Instant::now();
        let (result, kept) =
            std::panic::catch_unwind(AssertUnwindSafe(|| pinned.call(shared, watch, op, &input)))
                .unwrap_or_else(|_| {
                    let error = RuntimeError::Internal("a wasm worker panicked".into());
                    (Err(error.into()), false)
                });
        if !kept {
            self.guests.remove(&pin);
        }
        if let Err(e) = &result {
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            let (op, discarded) = (op.name(), !kept);
            if matches!(e.error, RuntimeError::Internal(_)) {
                tracing::error!(%machine, op, elapsed_ms, discarded, error = %e,
                    "pinned call failed");
            } else {
                tracing::debug!(%machine, op, elapsed_ms, discarded, error = %e,
                    "pinned call failed");
            }
        }
        if reply_tx.send(PinReply { kept, result }).is_err() {
            self.guests.remove(&pin);
        }
    }
}

impl PinnedGuest {
    /// One call, and whether the guest may serve further calls.
    fn call(
        &mut self,
        shared: &Shared,
        watch: &WatchSlot,
        op: Op,
        input: &[u8],
    ) -> (Result<Answer, EffectError>, bool) {
        let kind = self.template.kind;
        let output = match call_guest(&mut self.guest, shared, watch, kind, op, input) {
            Ok(output) => output,
            Err(error) => return (Err(error.into()), false),
        };
        let (result, keep) = if op.answers_outbox() {
            let (outbox, keep) = outbox::decode(op, &output, kind, &self.template.machine);
            (outbox.map(Answer::Outbox), keep)
        } else {
            let (reply, keep) = decode_reply(op, &output, &self.template, &shared.config);
            let step = reply.and_then(|reply| match reply {
                Reply::Step(step) => Ok(Answer::Step(step)),
                _ => Err(unexpected_reply()),
            });
            (step.map_err(EffectError::from), keep)
        };
        if matches!(&result, Err(e) if matches!(e.error, RuntimeError::OutOfMemory)) {
            count_out_of_memory(&shared.counters, kind);
        }
        (result, keep)
    }
}
