//! The timer worker: sleeps until the next wake-up or scan, then hands due instances to
//! delivery tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use super::{Shared, HORIZON_MS, MAX_CONCURRENT_DELIVERIES};
use crate::clock::now_ms;
use crate::ids::InstanceKey;
use crate::registry::{Registry, RegistryError};
use crate::store::{Store, Wakeup};

/// Wake-up index entries read per page of a scan.
const SCAN_PAGE: usize = 1_000;

/// Runs until `stop_rx` says stop.
pub(super) async fn run(
    shared: Arc<Shared>,
    registry: Registry,
    store: Arc<dyn Store>,
    mut stop_rx: watch::Receiver<bool>,
) {
    let deliveries = Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES));
    let mut next_scan = now_ms();
    tracing::debug!("timer worker started");
    loop {
        let now = now_ms();
        if now >= next_scan {
            match scan(&shared, store.as_ref(), now).await {
                Ok(found) => tracing::debug!(found, "wake-up index scanned"),
                Err(e) => tracing::warn!(error = %e, "wake-up index scan failed; will retry"),
            }
            next_scan = now + HORIZON_MS / 2;
        }
        let now = now_ms();
        let due = shared.schedule.lock().take_due(now);
        for key in due {
            spawn_delivery(shared.clone(), registry.clone(), deliveries.clone(), key);
        }
        let next_wake = shared.schedule.lock().next_wake();
        let until = next_wake.map_or(next_scan, |at| at.min(next_scan));
        let sleep_ms = u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0);
        if sleep_ms == 0 {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            () = shared.changed.notified() => {}
            _ = stop_rx.wait_for(|stop| *stop) => return,
        }
        if *stop_rx.borrow() {
            return;
        }
    }
}

/// Arms every instance the index says is due before now + horizon; answers how many.
async fn scan(
    shared: &Shared,
    store: &dyn Store,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    let until = now.saturating_add(HORIZON_MS);
    let mut after: Option<Wakeup> = None;
    let mut found = 0;
    loop {
        let page = store
            .wakeups_after(after.as_ref(), until, SCAN_PAGE)
            .await?;
        found += page.len();
        {
            let mut schedule = shared.schedule.lock();
            for wakeup in &page {
                schedule.arm_earlier(&wakeup.key, wakeup.wake_at_ms);
            }
        }
        if page.len() < SCAN_PAGE {
            return Ok(found);
        }
        after = page.last().cloned();
    }
}

/// Delivers what is due on `key`, pass after pass while it keeps coming due, then re-arms it
/// from what the instance says is next. A pass that could not be tried is retried after a
/// back-off, except at shutdown.
fn spawn_delivery(
    shared: Arc<Shared>,
    registry: Registry,
    deliveries: Arc<Semaphore>,
    key: InstanceKey,
) {
    tokio::spawn(async move {
        let Ok(_permit) = deliveries.acquire_owned().await else {
            return;
        };
        loop {
            let next = match registry.deliver_due(key.clone()).await {
                Ok(next) => next,
                Err(RegistryError::ShuttingDown) => None,
                Err(e) => {
                    tracing::debug!(instance = %key, error = %e, "due delivery not tried; backing off");
                    Some(now_ms().saturating_add(shared.backoff_ms))
                }
            };
            let horizon = now_ms().saturating_add(HORIZON_MS);
            let next = next.filter(|at| *at <= horizon);
            let again = shared.schedule.lock().finish_pass(&key, next);
            if !again {
                shared.changed.notify_one();
                return;
            }
        }
    });
}
