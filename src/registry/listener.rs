//! Hooks told about every durable write, for the real-time fan-out and the effect runner.

use std::sync::Arc;

use serde_json::Value;

use crate::ids::InstanceKey;
use crate::store::InstanceRecord;

/// Told about every durable write of an instance, after the store confirmed it and before the
/// writer is answered.
///
/// Calls for one instance arrive in commit order, from the task that committed, while that
/// instance's next write waits. Implementations must therefore return quickly and never block:
/// copy what they need and hand it to their own task (a channel, a watch).
pub trait CommitListener: Send + Sync + 'static {
    /// `record` is the new current record. `effects` are what the create or transition left
    /// for the host (timers, sends; see the runtime's ABI); empty for status changes, which keep
    /// the same `ts` and state.
    fn on_commit(&self, key: &InstanceKey, record: &Arc<InstanceRecord>, effects: &[Value]);

    /// The instance and its history were deleted.
    fn on_delete(&self, key: &InstanceKey) {
        let _ = key;
    }
}
