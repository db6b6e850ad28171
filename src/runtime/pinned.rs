//! Guests pinned to one machine instance while its effects run (machine ABI version 2).
//!
//! A version 2 module keeps tokens, running services and pending host operations in the memory
//! of the one guest that made them, so from the first Step whose `token` is not null until the
//! instance settles, every call of that instance must go to that guest. The flow:
//!
//! 1. [`Runtime::transition_pinned`] (or [`Runtime::init_pinned`]) runs the step on a pooled
//!    guest, exactly like [`Runtime::transition`]. When the Step's token is null the guest goes
//!    back to the pool and no handle is returned: the hot path is unchanged. Otherwise the guest
//!    leaves the pool and comes back as a [`Pinned`] handle that owns it.
//! 2. The caller commits the step, then calls [`Pinned::run_effects`] (or [`Pinned::discard`]
//!    when the commit failed), performs the [`Outbox`]'s operations, hands their results to
//!    [`Pinned::complete_op`], and sends the instance's next events with
//!    [`Pinned::transition`] on the same handle.
//! 3. When the instance has settled (nothing in `running`, no operation in flight, no event
//!    waiting), the caller drops the handle.
//!
//! Execution: wasmer stores cannot move between threads, so a pinned guest stays on the
//! worker that ran the step that pinned it, on that worker's pinboard. The handle sends
//! its calls to that worker's own queue, which the worker serves ahead of the shared queue; the
//! calls run there under the worker's deadline watch and trap handling, never on the reactor.
//! A pinned call waits while its worker finishes the call it is in. Calls take `&mut self`:
//! one call at a time per handle, in the order the caller makes them.
//!
//! Losing the guest: a trap, a deadline, output that breaks the ABI, an `out-of-memory` or
//! `internal` answer, a panic in the host, or a call whose future was dropped before it
//! answered discards the guest. The handle is then *lost* ([`Pinned::is_lost`]); later calls
//! fail with [`RuntimeError::GuestLost`], and the caller must treat every service that ran in it
//! as interrupted. A clean error (`bad-input`, `machine-threw`) keeps the guest.
//!
//! Releasing: dropping a [`Pinned`] asks its worker to drop the guest; it is never returned to
//! the pool, since services, timers or held-back operations may still live in it. A fresh
//! guest is copied from the machine's template when the pool needs one (under a millisecond).
//!
//! At most `RuntimeConfig::max_pinned` handles hold a guest at once (the slot is given back
//! when the handle is dropped or learns that its guest was discarded; the worker drops the
//! guest itself right after). A step that would pin beyond that fails with
//! [`RuntimeError::TooManyPinned`] and its guest is dropped, so nothing of the step runs.

use std::fmt;
use std::sync::Arc;

use crossbeam_channel::Sender;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::abi::Op;
use super::outbox::{EffectError, Outbox};
use super::pinboard::{Answer, PinCall, PinMessage};
use super::stats::PinSlot;
use super::workers::{Reply, Request};
use super::{
    init_input, transition_input, unexpected_reply, InitInput, MachineCode, Runtime, RuntimeError,
    Step,
};

impl Runtime {
    /// `init` on a pooled guest; when the Step's token is not null, also the guest that holds
    /// it, pinned (see the module docs). Fails with [`RuntimeError::TooManyPinned`] when the
    /// step needs a guest pinned and `max_pinned` are.
    pub async fn init_pinned(
        &self,
        code: &MachineCode,
        input: &InitInput,
    ) -> Result<(Step, Option<Pinned>), RuntimeError> {
        let input = init_input(input, self.config.max_context_bytes)?;
        self.step_pinned(code, Op::Init, input).await
    }

    /// `transition` on a pooled guest; when the Step's token is not null, also the guest that
    /// holds it, pinned. A caller already holding a [`Pinned`] for the instance must use
    /// [`Pinned::transition`] instead.
    pub async fn transition_pinned(
        &self,
        code: &MachineCode,
        snapshot: &str,
        event: &Value,
    ) -> Result<(Step, Option<Pinned>), RuntimeError> {
        let input = transition_input(snapshot, event)?;
        self.step_pinned(code, Op::Transition, input).await
    }

    async fn step_pinned(
        &self,
        code: &MachineCode,
        op: Op,
        input: Vec<u8>,
    ) -> Result<(Step, Option<Pinned>), RuntimeError> {
        match self.submit(code, Request::Pin { op, input }).await? {
            Reply::PinnedStep(step, pinned) => Ok((step, pinned)),
            _ => Err(unexpected_reply()),
        }
    }
}

/// A guest that belongs to one machine instance until the handle is dropped.
///
/// Made by [`Runtime::init_pinned`] and [`Runtime::transition_pinned`]. Every method runs its
/// call on the guest's worker thread under the call deadline. See the module docs for when the
/// guest is lost and what dropping the handle does.
pub struct Pinned {
    /// The queue of the worker that holds the guest.
    worker_tx: Sender<PinMessage>,
    /// The guest's id on that worker.
    pin: u64,
    machine: Arc<str>,
    max_context_bytes: usize,
    state: State,
    /// Held while the guest may be alive; counts toward `max_pinned`.
    slot: Option<PinSlot>,
}

enum State {
    Ready,
    /// A call was sent and has not answered; seen only after its future was dropped.
    Calling,
    Lost(String),
}

impl fmt::Debug for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned")
            .field("machine", &self.machine)
            .field("pin", &self.pin)
            .field("lost", &self.lost_reason())
            .finish()
    }
}

impl Pinned {
    /// A handle on guest `pin` of the worker behind `worker_tx`; called by that worker.
    pub(super) fn new(
        worker_tx: Sender<PinMessage>,
        pin: u64,
        machine: Arc<str>,
        max_context_bytes: usize,
        slot: PinSlot,
    ) -> Self {
        Self {
            worker_tx,
            pin,
            machine,
            max_context_bytes,
            state: State::Ready,
            slot: Some(slot),
        }
    }

    /// Whether the guest was discarded; every service that ran in it is then interrupted, and
    /// every further call fails with [`RuntimeError::GuestLost`].
    pub fn is_lost(&self) -> bool {
        !matches!(self.state, State::Ready)
    }

    /// Why the guest was discarded, when it was.
    pub fn lost_reason(&self) -> Option<&str> {
        match &self.state {
            State::Ready => None,
            State::Calling => Some("a call on it was cancelled before it answered"),
            State::Lost(reason) => Some(reason),
        }
    }

    /// `init` on the pinned guest.
    pub async fn init(&mut self, input: &InitInput) -> Result<Step, RuntimeError> {
        let input = init_input(input, self.max_context_bytes)?;
        self.step(Op::Init, input).await
    }

    /// `transition` on the pinned guest. The Step's token (if any) belongs to this guest.
    pub async fn transition(
        &mut self,
        snapshot: &str,
        event: &Value,
    ) -> Result<Step, RuntimeError> {
        let input = transition_input(snapshot, event)?;
        self.step(Op::Transition, input).await
    }

    /// Runs what the committed step behind `token` left for the module: held-back operations,
    /// custom actions, services to start, sends to children.
    pub async fn run_effects(&mut self, token: u64) -> Result<Outbox, EffectError> {
        self.effect(Op::RunEffects, &json!({ "token": token }))
            .await
    }

    /// Hands the result of host operation `op_id` back (a JSON object: a fetch result, or `{}`
    /// for a sleep) and runs what waited for it.
    pub async fn complete_op(&mut self, op_id: u64, result: Value) -> Result<Outbox, EffectError> {
        if !result.is_object() {
            let message = "the result of a host operation must be a JSON object";
            return Err(RuntimeError::BadInput(message.into()).into());
        }
        let input = json!({ "opId": op_id, "result": result });
        self.effect(Op::Complete, &input).await
    }

    /// Stops the running service `id`; its operations in flight are listed in `abort` and its
    /// later results are ignored. An id that does not run is ignored.
    pub async fn stop_child(&mut self, id: &str) -> Result<Outbox, EffectError> {
        self.effect(Op::StopChild, &json!({ "id": id })).await
    }

    /// Forgets `token` (its step was not committed) and the operations it held back.
    pub async fn discard(&mut self, token: u64) -> Result<Outbox, EffectError> {
        self.effect(Op::Discard, &json!({ "token": token })).await
    }

    /// Does nothing; the outbox's `running` lists the services that run.
    pub async fn running(&mut self) -> Result<Outbox, EffectError> {
        self.effect(Op::Running, &json!({})).await
    }

    async fn step(&mut self, op: Op, input: Vec<u8>) -> Result<Step, RuntimeError> {
        match self.call(op, input).await? {
            Answer::Step(step) => Ok(step),
            Answer::Outbox(_) => Err(unexpected_reply()),
        }
    }

    async fn effect(&mut self, op: Op, input: &Value) -> Result<Outbox, EffectError> {
        let input = serde_json::to_vec(input).map_err(|e| RuntimeError::BadInput(e.to_string()))?;
        match self.call(op, input).await? {
            Answer::Outbox(outbox) => Ok(outbox),
            Answer::Step(_) => Err(unexpected_reply().into()),
        }
    }

    /// Sends the call to the guest's worker and waits for its answer.
    async fn call(&mut self, op: Op, input: Vec<u8>) -> Result<Answer, EffectError> {
        if let Some(reason) = self.lost_reason() {
            return Err(RuntimeError::GuestLost(reason.to_owned()).into());
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let call = PinCall {
            pin: self.pin,
            op,
            input,
            reply_tx,
        };
        if self.worker_tx.send(PinMessage::Call(call)).is_err() {
            return Err(self.lose(RuntimeError::Internal("wasm workers have stopped".into())));
        }
        // Stays so if this future is dropped: the worker then discards the guest.
        self.state = State::Calling;
        let Ok(reply) = reply_rx.await else {
            return Err(self.lose(RuntimeError::Internal(
                "a wasm worker dropped the call".into(),
            )));
        };
        if reply.kept {
            self.state = State::Ready;
        } else {
            let reason = match &reply.result {
                Err(e) => e.error.to_string(),
                Ok(_) => "the worker dropped it".to_owned(),
            };
            self.state = State::Lost(reason);
            self.slot = None;
        }
        reply.result
    }

    fn lose(&mut self, error: RuntimeError) -> EffectError {
        self.state = State::Lost(error.to_string());
        self.slot = None;
        error.into()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The worker drops the guest (a no-op if it is gone already, or the worker stopped).
        let _ = self.worker_tx.send(PinMessage::Release(self.pin));
    }
}

/// A handle moves between tasks and may sit in shared maps.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Pinned>();
};
