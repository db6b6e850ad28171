//! What the effect operations of ABI version 2 answer: the outbox, its host operations, and
//! the error that carries a partial outbox (docs/machine-abi.md, "The outbox").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::abi::{self, abi_violation, GuestLog, Op};
use super::{CodeKind, RuntimeError};

/// The answer of `run_effects`, `complete_op`, `stop_child`, `discard` and `running`.
///
/// Everything a call asks of the host is here and nowhere else: a caller that drops an outbox
/// loses the operations and events in it. The guest's `logs` are not kept: they are written
/// to the host log as machine log lines when the answer is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    /// Host operations asked for during the call, in order: perform each, then hand its
    /// result to [`Pinned::complete_op`](super::Pinned::complete_op).
    pub ops: Vec<HostOp>,
    /// Ids of operations in flight the guest no longer wants; the host may cancel them and
    /// need not complete them (a completion is ignored).
    pub abort: Vec<u64>,
    /// Events for the instance itself, to deliver in order through the normal path.
    pub events: Vec<Value>,
    /// Events for other actors (in practice XState 5's stand-in parent).
    pub sends: Vec<SendTo>,
    /// Ids of the services running in the guest after the call.
    pub running: Vec<String>,
}

impl Outbox {
    /// Whether the outbox asks for nothing: no operation, abort, event or send. `running` is
    /// not considered: services may run without asking for anything yet.
    pub fn is_quiet(&self) -> bool {
        self.ops.is_empty()
            && self.abort.is_empty()
            && self.events.is_empty()
            && self.sends.is_empty()
    }
}

/// A host operation a guest asked for. Its id is unique within one guest only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HostOp {
    /// An HTTP request. `request` is the guest's JSON object as docs/machine-abi.md ("Host
    /// operations") describes it: `method`, `url`, `headers`, `body` (or `bodyBase64`).
    Fetch {
        #[serde(rename = "opId")]
        op_id: u64,
        request: Value,
    },
    /// A wait of `ms` milliseconds; ephemeral (it dies with the guest), completed with `{}`.
    Sleep {
        #[serde(rename = "opId")]
        op_id: u64,
        ms: u64,
    },
}

impl HostOp {
    pub fn op_id(&self) -> u64 {
        match self {
            HostOp::Fetch { op_id, .. } | HostOp::Sleep { op_id, .. } => *op_id,
        }
    }
}

/// An event for another actor; `to` is as in a `send` effect, e.g. `{"kind": "parent"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendTo {
    pub to: Value,
    pub event: Value,
}

/// An effect operation that failed. When the guest answered `out-of-memory` or `internal`, it
/// may have done part of the call: `partial` holds what it asked for until then, which the
/// caller must still act on, and the guest has been discarded (the [`Pinned`] is lost). A
/// trap or a deadline has no partial outbox.
///
/// [`Pinned`]: super::Pinned
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct EffectError {
    pub error: RuntimeError,
    pub partial: Option<Outbox>,
}

impl From<RuntimeError> for EffectError {
    fn from(error: RuntimeError) -> Self {
        Self {
            error,
            partial: None,
        }
    }
}

impl From<EffectError> for RuntimeError {
    fn from(e: EffectError) -> Self {
        e.error
    }
}

/// An outbox as the guest writes it; every field may be left out.
#[derive(Debug, Deserialize)]
struct OutboxWire {
    #[serde(default)]
    ops: Vec<HostOp>,
    #[serde(default)]
    abort: Vec<u64>,
    #[serde(default)]
    events: Vec<Value>,
    #[serde(default)]
    sends: Vec<SendTo>,
    #[serde(default)]
    running: Vec<String>,
    #[serde(default)]
    logs: Vec<GuestLog>,
}

impl OutboxWire {
    fn into_outbox(self, machine: &str) -> Outbox {
        abi::write_logs(machine, &self.logs);
        Outbox {
            ops: self.ops,
            abort: self.abort,
            events: self.events,
            sends: self.sends,
            running: self.running,
        }
    }
}

/// Reads the answer of effect operation `op`, writing its logs, and says whether the guest
/// may serve further calls: yes after an outbox or a clean error (`bad-input` changed
/// nothing), no after `out-of-memory`, `internal` or output that breaks the ABI.
pub fn decode(
    op: Op,
    output: &[u8],
    kind: CodeKind,
    machine: &str,
) -> (Result<Outbox, EffectError>, bool) {
    match abi::decode::<OutboxWire>(output) {
        Ok(Ok(wire)) => (Ok(wire.into_outbox(machine)), true),
        Ok(Err(mut error)) => {
            let keep = !error.spoils_guest();
            let partial = error.outbox.take().and_then(|value| {
                serde_json::from_value::<OutboxWire>(value)
                    .inspect_err(|e| {
                        tracing::error!(%machine, op = op.name(), error = %e,
                            "the partial outbox of a failed effect operation is unreadable");
                    })
                    .ok()
            });
            let error = EffectError {
                error: error.into_runtime_error(op),
                partial: partial.map(|wire| wire.into_outbox(machine)),
            };
            (Err(error), keep)
        }
        Err(violation) => (Err(abi_violation(kind, violation).into()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_outbox_reads_fetch_and_sleep_operations() {
        let output = json!({"ok": {
            "ops": [
                {"opId": 1, "kind": "fetch", "request": {"method": "GET", "url": "https://a.test/"}},
                {"opId": 2, "kind": "sleep", "ms": 50}
            ],
            "abort": [7], "events": [{"type": "E"}],
            "sends": [{"to": {"kind": "parent"}, "event": {"type": "P"}}],
            "running": ["svc"], "logs": [{"level": "log", "message": "hi"}]
        }});
        let (outbox, keep) = decode(
            Op::RunEffects,
            output.to_string().as_bytes(),
            CodeKind::JsBundle,
            "m",
        );
        assert!(keep);
        let outbox = outbox.unwrap();
        assert_eq!(outbox.ops.len(), 2);
        assert_eq!(outbox.ops[0].op_id(), 1);
        assert!(matches!(&outbox.ops[0], HostOp::Fetch { request, .. }
            if request["url"] == "https://a.test/"));
        assert_eq!(outbox.ops[1], HostOp::Sleep { op_id: 2, ms: 50 });
        assert_eq!(outbox.abort, vec![7]);
        assert_eq!(outbox.sends[0].to, json!({"kind": "parent"}));
        assert_eq!(outbox.running, vec!["svc".to_owned()]);
        assert!(!outbox.is_quiet());
    }

    #[test]
    fn an_out_of_memory_answer_carries_its_partial_outbox_and_spoils_the_guest() {
        let output = json!({"error": {"kind": "out-of-memory", "message": "heap",
            "outbox": {"ops": [], "abort": [], "events": [{"type": "E"}], "sends": [],
                       "running": ["svc"]}}});
        let (result, keep) = decode(
            Op::Complete,
            output.to_string().as_bytes(),
            CodeKind::JsBundle,
            "m",
        );
        assert!(!keep);
        let error = result.unwrap_err();
        assert!(matches!(error.error, RuntimeError::OutOfMemory));
        let partial = error.partial.unwrap();
        assert_eq!(partial.events, vec![json!({"type": "E"})]);
        assert_eq!(partial.running, vec!["svc".to_owned()]);
    }

    #[test]
    fn a_bad_input_answer_keeps_the_guest() {
        let output = br#"{"error": {"kind": "bad-input", "message": "token 9 is not kept"}}"#;
        let (result, keep) = decode(Op::RunEffects, output, CodeKind::JsBundle, "m");
        assert!(keep);
        let error = result.unwrap_err();
        assert!(matches!(error.error, RuntimeError::BadInput(_)));
        assert!(error.partial.is_none());
    }

    #[test]
    fn an_unknown_operation_kind_breaks_the_abi() {
        let output = br#"{"ok": {"ops": [{"opId": 1, "kind": "teleport"}]}}"#;
        let (result, keep) = decode(Op::RunEffects, output, CodeKind::RawWasm, "m");
        assert!(!keep);
        assert!(matches!(result.unwrap_err().error, RuntimeError::Trap(_)));
    }
}
