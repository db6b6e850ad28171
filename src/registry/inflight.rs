//! Counts writes in progress so shutdown can wait for them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::RegistryError;

#[derive(Default)]
pub(super) struct Inflight {
    count: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

/// Held for the length of one write; dropping it ends the write.
pub(super) struct WriteGuard<'a>(&'a Inflight);

impl Inflight {
    /// Starts a write, or refuses it once draining began. The count is raised before the flag
    /// is read, so a write either is seen by `drain` or sees the flag.
    pub fn begin(&self) -> Result<WriteGuard<'_>, RegistryError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        let guard = WriteGuard(self);
        if self.closed.load(Ordering::SeqCst) {
            return Err(RegistryError::ShuttingDown);
        }
        Ok(guard)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Refuses new writes, then waits up to `grace` for the running ones.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Registered before the count is read, so a wake-up in between is not lost.
            let idle = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.count.load(Ordering::SeqCst) == 0;
            }
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_running_writes_and_refuses_new_ones() {
        tokio::time::timeout(Duration::from_secs(30), drain_waits())
            .await
            .expect("test timed out");
    }

    async fn drain_waits() {
        let inflight = std::sync::Arc::new(Inflight::default());
        let running = inflight.clone();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            let _guard = running.begin().unwrap();
            started_tx.send(()).unwrap();
            release_rx.await.unwrap();
        });
        started_rx.await.unwrap();

        let draining = inflight.clone();
        let drain = tokio::spawn(async move { draining.drain(Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        assert!(matches!(inflight.begin(), Err(RegistryError::ShuttingDown)));
        assert!(!drain.is_finished());

        release_tx.send(()).unwrap();
        writer.await.unwrap();
        assert!(drain.await.unwrap());
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let inflight = Inflight::default();
        let _stuck = inflight.begin().unwrap();
        let drained = tokio::time::timeout(
            Duration::from_secs(30),
            inflight.drain(Duration::from_millis(100)),
        )
        .await
        .expect("test timed out");
        assert!(!drained);
    }
}
