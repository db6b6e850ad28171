//! Acting on an instance whose wake-up time has come: its ready timers one by one, in due
//! order, then its ready outbox messages.

use std::sync::Arc;

use super::fire::TimerFire;
use super::{Inner, RegistryError};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::store::InstanceRecord;

/// Deliveries made for one instance in one call of [`Inner::deliver_due`] before it hands
/// back, so a machine that keeps sending itself events cannot hold a delivery task forever;
/// the rest is picked up by the next wake-up, which is due at once.
const MAX_DELIVERIES_PER_WAKE: usize = 64;

impl Inner {
    /// Delivers what is ready on `key` now and answers the instance's next wake-up time
    /// (`None`: nothing pending, or no such instance).
    pub(super) async fn deliver_due(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<Option<i64>, RegistryError> {
        for _ in 0..MAX_DELIVERIES_PER_WAKE {
            let Some(record) = self.latest(key).await? else {
                return Ok(None);
            };
            let now = now_ms();
            if let Some((id, seq)) = next_ready_timer(&record, now) {
                match self.fire_timer(key, &id, seq).await? {
                    TimerFire::NotDue { ready_at_ms } => return Ok(Some(ready_at_ms)),
                    _ => continue,
                }
            }
            if record
                .effects
                .outbox
                .iter()
                .any(|m| m.ready_at_ms(now) <= now)
            {
                self.dispatch_outbox(key, &record).await?;
                return Ok(self.latest(key).await?.and_then(|r| r.effects.wake_at_ms));
            }
            return Ok(record.effects.wake_at_ms);
        }
        Ok(self.latest(key).await?.and_then(|r| r.effects.wake_at_ms))
    }

    /// The instance as the store holds it after every write that came before this call.
    async fn latest(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<Option<Arc<InstanceRecord>>, RegistryError> {
        match self.hold_existing(key).await {
            Ok((_held, record)) => Ok(Some(record)),
            Err(RegistryError::InstanceNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The ready timer due first (ties: the older generation, then the order they were armed,
/// which keeps `enqueue`d events in their order).
fn next_ready_timer(record: &InstanceRecord, now_ms: i64) -> Option<(String, u64)> {
    record
        .effects
        .timers
        .iter()
        .enumerate()
        .filter(|(_, t)| t.ready_at_ms() <= now_ms)
        .min_by_key(|(i, t)| (t.ready_at_ms(), t.seq, *i))
        .map(|(_, t)| (t.id.clone(), t.seq))
}
