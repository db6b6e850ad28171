//! The settle window: releasing the guest when an instance settles, and stopping what still
//! runs when the window closes first.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::Runner;
use crate::ids::InstanceKey;
use crate::metrics::services as metrics;
use crate::registry::write::effects_only_commit;
use crate::registry::{Inner, RegistryError};
use crate::runtime::SendTo;
use crate::store::{InstanceRecord, OutboxKind, OutboxMessage, ServiceState};

/// How long a request waits for its instance to settle unless configured otherwise.
pub const DEFAULT_SETTLE_WINDOW_MS: u64 = 90_000;

impl Inner {
    /// Closes the runner's window when its deadline passes (the deadline may move later).
    pub(super) fn spawn_watchdog(self: &Arc<Self>, key: InstanceKey, runner: Arc<Runner>) {
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let deadline = {
                    let st = runner.st.lock();
                    if st.closed {
                        return;
                    }
                    st.deadline
                };
                let Some(deadline) = deadline else { return };
                if tokio::time::Instant::now() < deadline.into() {
                    tokio::time::sleep_until(deadline.into()).await;
                    continue;
                }
                let Some(inner) = inner.upgrade() else { return };
                tracing::info!(instance = %key, "settle window closed; stopping its services");
                metrics::window_closed();
                inner.close_runner(&key, &runner, true).await;
                return;
            }
        });
    }

    /// Releases the guest if nothing runs, nothing is in flight and nothing waits.
    pub(super) async fn settle_if_quiet(&self, key: &InstanceKey, runner: &Arc<Runner>) {
        {
            let mut st = runner.st.lock();
            if st.closed || !Runner::is_quiet(&st) {
                return;
            }
            st.closed = true;
        }
        runner.pin.lock().await.take();
        self.services
            .runners
            .remove_if(key, |_, r| Arc::ptr_eq(r, runner));
        metrics::settled(runner.started.elapsed());
        tracing::debug!(instance = %key, "instance settled");
        let _ = runner.settled_tx.send(true);
    }

    /// Stops everything of `runner` and releases its guest. Its services' markers become owed
    /// error events; with `mark`, they are written `Interrupted` first (the window closed).
    ///
    /// Boxed: closing writes the markers through the write path, which may close a runner.
    pub(in crate::registry) fn close_runner<'a>(
        self: &'a Arc<Self>,
        key: &'a InstanceKey,
        runner: &'a Arc<Runner>,
        mark: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.close_runner_inner(key, runner, mark))
    }

    async fn close_runner_inner(
        self: &Arc<Self>,
        key: &InstanceKey,
        runner: &Arc<Runner>,
        mark: bool,
    ) {
        let running = {
            let mut st = runner.st.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            for (_, handle) in st.ops.drain() {
                handle.abort();
            }
            st.queue.clear();
            std::mem::take(&mut st.running)
        };
        {
            let mut pin = runner.pin.lock().await;
            if let Some(pinned) = pin.as_mut() {
                for id in &running {
                    if let Err(e) = pinned.stop_child(id).await {
                        tracing::debug!(instance = %key, service = %id, error = %e.error, "stopping a service failed");
                    }
                }
            }
            *pin = None;
        }
        self.services
            .runners
            .remove_if(key, |_, r| Arc::ptr_eq(r, runner));
        metrics::settled(runner.started.elapsed());
        if mark {
            if let Err(e) = self.mark_interrupted(key).await {
                tracing::warn!(instance = %key, error = %e, "could not mark interrupted services");
            }
        }
        let _ = runner.settled_tx.send(true);
    }

    /// Writes every `Started` marker of `key` as `Interrupted` (no history entry).
    async fn mark_interrupted(self: &Arc<Self>, key: &InstanceKey) -> Result<(), RegistryError> {
        let marked = std::sync::atomic::AtomicUsize::new(0);
        let marked_ref = &marked;
        self.write_existing(key, |current| async move {
            let started = |s: &crate::store::ServiceMarker| s.state == ServiceState::Started;
            if !current.effects.services.iter().any(started) {
                return Ok(None);
            }
            let mut effects = current.effects.clone();
            let n = effects.interrupt_services();
            marked_ref.store(n, std::sync::atomic::Ordering::Relaxed);
            Ok(Some(effects_only_commit(key, &current, effects)))
        })
        .await?;
        metrics::interrupted(marked.into_inner());
        Ok(())
    }

    /// Queues a send of a service (to the parent) in the instance's durable outbox, in a
    /// write of its own; the timer service delivers it like any message.
    pub(super) async fn queue_send(
        self: &Arc<Self>,
        key: &InstanceKey,
        runner: &Arc<Runner>,
        send: SendTo,
    ) -> Result<(), RegistryError> {
        let send = &send;
        self.write_existing(key, |current| async move {
            if !runner.owns(&current) {
                tracing::info!(instance = %key, "a send of a stopped or deleted instance was dropped");
                return Ok(None);
            }
            let mut effects = current.effects.clone();
            let version = current.version + 1;
            effects.queue(OutboxMessage {
                id: format!("{version}:service"),
                to: send.to.clone(),
                event: send.event.clone(),
                attempts: 0,
                next_attempt_at_ms: None,
                kind: OutboxKind::Send,
            });
            Ok(Some(effects_only_commit(key, &current, effects)))
        })
        .await
        .map(drop)
    }

    /// Waits until `key` settles or its window closes (at once when nothing runs for it),
    /// then answers the instance's state for a request that committed `record`: the stored
    /// record when it is still the same instance, else `record` itself (the instance was
    /// deleted while the request waited; a later instance of that name is not its answer).
    pub(in crate::registry) async fn settled_answer(
        self: &Arc<Self>,
        key: &InstanceKey,
        record: Arc<InstanceRecord>,
    ) -> Arc<InstanceRecord> {
        if let Some(runner) = self.services.live(key) {
            if runner.wait().await {
                return record;
            }
        }
        match self.read(key).await {
            Ok(now) if now.created_at_ms == record.created_at_ms => now,
            _ => record,
        }
    }

    /// Ends the runner of `key`, which was just deleted (called while the deletion still
    /// holds the instance): its services are stopped, its operations cancelled, its queued
    /// events dropped, and requests waiting for it are answered.
    pub(in crate::registry) async fn end_deleted(self: &Arc<Self>, key: &InstanceKey) {
        let runner = self.services.runners.get(key).map(|r| r.value().clone());
        if let Some(runner) = runner {
            runner.st.lock().deleted = true;
            tracing::info!(instance = %key, "instance deleted; its services are stopped");
            self.close_runner(key, &runner, false).await;
        }
    }

    /// An event from outside reached `key`: its window ends one window from now.
    pub(in crate::registry) fn extend_window(&self, key: &InstanceKey) {
        if let Some(runner) = self.services.live(key) {
            runner.extend(self.services.window());
        }
    }
}
