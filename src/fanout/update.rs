//! One committed change, serialized once: the full `instance-update` frame that every
//! subscriber can take, and the `instance-patch` frame for subscribers that asked for diffs.
//!
//! The view the patch is computed over is `{state, publicContext, tags, done}`; `ts` and the
//! sequence numbers travel in the frame around it. The sequence of an update is the
//! instance's record `version`: monotonic, durable, and the same after a restart.

use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::patch::PatchOp;
use crate::ids::InstanceKey;
use crate::runtime::public_context;
use crate::store::InstanceRecord;

/// A text frame as it goes on the wire; cloning shares the bytes.
pub type Frame = Utf8Bytes;

/// A position in an instance's sequence: the version and, when known, its `ts`. The `ts` tells
/// two incarnations of a deleted and re-created instance apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    pub seq: u64,
    pub ts_ms: Option<i64>,
}

impl Base {
    /// True when `self` and `other` name the same update: same sequence, and the same `ts`
    /// when both know it.
    pub fn same_as(&self, other: &Base) -> bool {
        self.seq == other.seq
            && match (self.ts_ms, other.ts_ms) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// A published change of one instance.
#[derive(Debug)]
pub struct Update {
    pub seq: u64,
    pub ts_ms: i64,
    /// The update `patch` applies to; `None` when no earlier view was known.
    pub base: Option<Base>,
    /// `instance-update` with every field the official client requires, plus `seq`.
    pub full: Frame,
    /// `instance-patch` from `base` to this update; `None` exactly when `base` is.
    pub patch: Option<Frame>,
}

impl Update {
    pub fn position(&self) -> Base {
        Base {
            seq: self.seq,
            ts_ms: Some(self.ts_ms),
        }
    }
}

/// The part of a record that subscribers see and diffs are computed over.
pub fn view_of(record: &InstanceRecord) -> Value {
    json!({
        "state": record.state,
        "publicContext": public_context(&record.context),
        "tags": record.tags,
        "done": record.done,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FullFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    machine_name: &'a str,
    machine_instance_name: &'a str,
    state: &'a Value,
    public_context: &'a Value,
    tags: &'a Value,
    done: &'a Value,
    ts: i64,
    seq: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    machine_name: &'a str,
    machine_instance_name: &'a str,
    seq: u64,
    prev_seq: u64,
    ts: i64,
    patch: &'a [PatchOp],
}

/// The `instance-update` frame of `view` (as built by [`view_of`]).
pub fn full_frame(key: &InstanceKey, view: &Value, seq: u64, ts_ms: i64) -> Frame {
    let field = |name: &str| view.get(name).unwrap_or(&Value::Null);
    encode(&FullFrame {
        kind: "instance-update",
        machine_name: key.machine.as_str(),
        machine_instance_name: key.instance.as_str(),
        state: field("state"),
        public_context: field("publicContext"),
        tags: field("tags"),
        done: field("done"),
        ts: ts_ms,
        seq,
    })
}

/// The `instance-patch` frame taking a client from `prev_seq` to `seq`.
pub fn patch_frame(
    key: &InstanceKey,
    seq: u64,
    prev_seq: u64,
    ts_ms: i64,
    ops: &[PatchOp],
) -> Frame {
    encode(&PatchFrame {
        kind: "instance-patch",
        machine_name: key.machine.as_str(),
        machine_instance_name: key.instance.as_str(),
        seq,
        prev_seq,
        ts: ts_ms,
        patch: ops,
    })
}

/// Builds an update: the full frame always, the patch frame when the previous view is known.
pub fn build(
    key: &InstanceKey,
    record: &InstanceRecord,
    view: &Value,
    prev: Option<(Base, &[PatchOp])>,
) -> Update {
    let full = full_frame(key, view, record.version, record.ts_ms);
    let (base, patch) = match prev {
        Some((base, ops)) => (
            Some(base),
            Some(patch_frame(
                key,
                record.version,
                base.seq,
                record.ts_ms,
                ops,
            )),
        ),
        None => (None, None),
    };
    Update {
        seq: record.version,
        ts_ms: record.ts_ms,
        base,
        full,
        patch,
    }
}

fn encode(frame: &impl Serialize) -> Frame {
    // Frames hold only strings, numbers, booleans and JSON values: serializing cannot fail.
    let text = serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}"));
    Frame::from(text)
}
