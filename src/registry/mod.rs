//! Hot instances: a sharded map, one cold load per instance, one event at a time per instance.
//!
//! Every write to an instance (create, event, status change, delete) goes through here:
//!
//! 1. take the instance's entry from the sharded map and lock its async mutex, so writes to one
//!    instance run one at a time, in arrival order;
//! 2. load the instance from the store if the entry is cold (once, however many requests
//!    raced for it: they queue on the same mutex and find it loaded);
//! 3. run the authorizer and the transition in the runtime (on its worker threads);
//! 4. compare-and-set the next snapshot in the store; on a conflict, reload and re-run the
//!    event on the newer snapshot (bounded; an event is never applied twice);
//! 5. only once the store says the write is durable: update the cached record, tell the
//!    [`CommitListener`]s, and answer.
//!
//! Writes run on their own tokio task, so a client that disconnects mid-request cannot cancel a
//! commit half-way; shutdown waits for them with [`Registry::drain`].
//!
//! Effects after commit go the same way: a step's effects are applied to the instance's
//! effect state in the commit of the step (`effects`); a due timer is delivered as an event
//! of the instance (`fire`); messages to other instances go through the receivers' own write
//! paths (`outbox`); `due` acts on an instance whose wake-up time has come; `services` runs
//! the module's share (custom actions, services) on the instance's pinned guest after the
//! commit, holds requests until the instance settles, and delivers owed error events.
//!
//! Layout: `entry` (the map entry and its states), `code` (machine code cached per version),
//! `write` (the write paths above), `evict` (the eviction policy), `listener` (commit hooks),
//! `inflight` (tracking writes for shutdown), `effects`, `fire`, `outbox`, `due`, `services`.

mod code;
mod due;
pub mod effects;
mod entry;
mod evict;
mod fire;
mod inflight;
mod listener;
mod outbox;
mod records;
mod services;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::RegistryLimits;
use crate::ids::{InstanceKey, MachineName, MachineVersionId};
use crate::metrics::events as metrics;
use crate::runtime::{MachineCode, Runtime, RuntimeError};
use crate::store::{InstanceRecord, InstanceStatus, Store, StoreError};

pub use fire::{RetryPolicy, TimerFire};
pub use listener::CommitListener;

use code::CodeCache;
use entry::Entry;
use inflight::Inflight;

/// How many times one event is run against a newer snapshot after compare-and-set conflicts
/// before the request fails. Conflicts only happen when another node wrote the instance, so a
/// handful of attempts covers any real contention.
pub const MAX_COMMIT_ATTEMPTS: u32 = 5;

/// Why a registry call failed. Runtime and store failures pass through unchanged.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("instance {0} not found")]
    InstanceNotFound(InstanceKey),
    #[error("instance {0} already exists")]
    AlreadyExists(InstanceKey),
    #[error("instance {0} is paused")]
    Paused(InstanceKey),
    #[error("machine version {version} of machine {machine} not found")]
    VersionNotFound {
        machine: MachineName,
        version: MachineVersionId,
    },
    /// `allowRead` or `allowWrite` returned false.
    #[error("rejected by machine authorizer")]
    Rejected,
    /// Every attempt met a newer snapshot written elsewhere.
    #[error("instance {key} kept changing; gave up after {attempts} attempts")]
    Contended { key: InstanceKey, attempts: u32 },
    /// A stored version points at code the store does not have.
    #[error("code {0} of a stored machine version is missing")]
    MissingCode(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The task running the write panicked or was cancelled.
    #[error("instance write task failed: {0}")]
    TaskFailed(String),
}

/// What [`Registry::create`] needs besides the instance's key.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub version: MachineVersionId,
    /// The caller's context, merged over the machine's initial context by the guest.
    pub context: Value,
    pub auth_context: Value,
}

/// Counters for tests, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    /// Entries in the map now (loaded or being loaded).
    pub hot: usize,
    /// Instance loads from the store since start.
    pub loads: u64,
    pub evictions: u64,
}

/// The hot-instance registry. Cheap to clone; clones share everything.
///
/// **Eviction policy.** The map holds at most about `max_hot_instances` entries: when an insert
/// takes it above that bound, the least recently used entries are evicted until it is at 90% of
/// the bound (so the scan runs once per tenth of the bound, not per insert). Independently, a
/// sweeper evicts entries unused for `idle_evict_ms`. An entry with a request in progress is
/// never evicted, so the bound can be exceeded by the number of instances being written at
/// that moment. Eviction only drops the cached copy; the store is the truth and the next
/// request reloads it.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    runtime: Runtime,
    hot: DashMap<InstanceKey, Arc<Entry>>,
    code: CodeCache,
    listeners: RwLock<Vec<Arc<dyn CommitListener>>>,
    inflight: Inflight,
    retry: RwLock<RetryPolicy>,
    max_hot: usize,
    idle_evict_ms: i64,
    evicting: std::sync::atomic::AtomicBool,
    loads: AtomicU64,
    evictions: AtomicU64,
    services: services::Services,
}

impl Registry {
    /// A registry over `store`; call [`Registry::start_sweeper`] to evict idle instances.
    pub fn new(store: Arc<dyn Store>, runtime: Runtime, limits: &RegistryLimits) -> Self {
        let max_bundle_bytes = runtime.config().max_bundle_bytes;
        Self {
            inner: Arc::new(Inner {
                code: CodeCache::new(store.clone(), max_bundle_bytes),
                store,
                runtime,
                hot: DashMap::new(),
                listeners: RwLock::new(Vec::new()),
                inflight: Inflight::default(),
                retry: RwLock::new(RetryPolicy::default()),
                max_hot: limits.max_hot_instances.max(1),
                idle_evict_ms: i64::try_from(limits.idle_evict_ms).unwrap_or(i64::MAX),
                evicting: Default::default(),
                loads: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                services: Default::default(),
            }),
        }
    }

    /// Registers a hook called after every durable write; see [`CommitListener`].
    pub fn add_listener(&self, listener: Arc<dyn CommitListener>) {
        self.inner.listeners.write().push(listener);
    }

    /// How invoked services run: `host_ops` performs their `fetch` and `sleep` operations,
    /// and a request waits at most `settle_window_ms` after its last event for its instance
    /// to settle (docs/effects.md, "Settling").
    pub fn set_services(&self, host_ops: crate::effects::HostOps, settle_window_ms: u64) {
        self.inner.services.configure(host_ops, settle_window_ms);
    }

    /// Delivers the owed error events of every instance whose services were cut off (by a
    /// crash or a restart); returns how many instances had some. Run once at start.
    pub async fn recover_services(&self) -> usize {
        self.inner.recover_services().await
    }

    /// Instances whose services run now, each holding a pinned guest.
    pub fn unsettled(&self) -> usize {
        self.inner.services.len()
    }

    /// Makes the next `n` instance commits meet a conflict without writing, as if another
    /// node had written first. For tests of what runs after a failed commit.
    #[doc(hidden)]
    pub fn force_conflicts(&self, n: u32) {
        self.inner.services.force_conflicts(n);
    }

    /// How failed deliveries of timers and messages are retried from now on.
    pub fn set_retry_policy(&self, policy: RetryPolicy) {
        *self.inner.retry.write() = policy;
    }

    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            hot: self.inner.hot.len(),
            loads: self.inner.loads.load(Ordering::Relaxed),
            evictions: self.inner.evictions.load(Ordering::Relaxed),
        }
    }

    /// The code of one version of a machine, loaded from the store once and then cached.
    pub async fn code(
        &self,
        machine: &MachineName,
        version: &MachineVersionId,
    ) -> Result<MachineCode, RegistryError> {
        self.inner.code.get(machine, version).await
    }

    /// The instance as last committed, without asking its authorizer (admin reads).
    /// May lag a write that is being committed at this moment.
    pub async fn load(&self, key: &InstanceKey) -> Result<Arc<InstanceRecord>, RegistryError> {
        self.inner.read(key).await
    }

    /// The instance as last committed, if `allowRead` lets `auth_context` see it.
    pub async fn read(
        &self,
        key: &InstanceKey,
        auth_context: &Value,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let record = self.inner.read(key).await?;
        let code = self.code(&key.machine, &record.machine_version).await?;
        let args = json!({
            "machineInstanceName": key.instance.as_str(),
            "state": record.state,
            "context": record.context,
            "authContext": auth_context,
        });
        if self.inner.runtime.allow_read(&code, &args).await? {
            Ok(record)
        } else {
            metrics::authorizer_denied(&key.machine, metrics::Access::Read);
            Err(RegistryError::Rejected)
        }
    }

    /// Creates an instance: `allowWrite` (initialization), `init`, then a durable create.
    pub async fn create(
        &self,
        key: InstanceKey,
        request: CreateRequest,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let inner = self.inner.clone();
        let machine = key.machine.clone();
        let result = spawn_write(async move { inner.create(&key, request, None).await }).await;
        metrics::creation_finished(&machine, &result);
        result
    }

    /// Applies one event (an object with `type`) after `allowWrite` accepts it.
    pub async fn send_event(
        &self,
        key: InstanceKey,
        event: Value,
        auth_context: Value,
    ) -> Result<Arc<InstanceRecord>, RegistryError> {
        let inner = self.inner.clone();
        let (machine, started) = (key.machine.clone(), Instant::now());
        let result =
            spawn_write(async move { inner.send_event(&key, &event, &auth_context).await }).await;
        metrics::event_finished(&machine, &result, started.elapsed());
        result
    }

    /// Pauses or resumes an instance; paused instances refuse events.
    pub async fn set_status(
        &self,
        key: InstanceKey,
        status: InstanceStatus,
    ) -> Result<(), RegistryError> {
        let inner = self.inner.clone();
        spawn_write(async move { inner.set_status(&key, status).await }).await
    }

    /// Delivers the timer `(id, seq)` of `key` if it is still there and due: the stored event
    /// makes a transition (without `allowWrite`: the machine scheduled it itself) that removes
    /// the timer and applies the new step's effects in one write. A failure counts as an
    /// attempt (see [`TimerFire`]). Safe to call twice for one timer: one call delivers it,
    /// the other finds it gone.
    pub async fn fire_timer(
        &self,
        key: InstanceKey,
        id: String,
        seq: u64,
    ) -> Result<TimerFire, RegistryError> {
        let inner = self.inner.clone();
        spawn_write(async move { inner.fire_timer(&key, &id, seq).await }).await
    }

    /// Delivers what is ready on `key` now (timers, then outbox messages) and answers its
    /// next wake-up time; `None` when nothing is pending or the instance does not exist.
    /// An error means some of it could not be tried (shutdown, store trouble, contention):
    /// the caller tries again later.
    pub async fn deliver_due(&self, key: InstanceKey) -> Result<Option<i64>, RegistryError> {
        let inner = self.inner.clone();
        spawn_write(async move { inner.deliver_due(&key).await }).await
    }

    /// Deletes an instance and its history; `InstanceNotFound` when there was none.
    pub async fn delete(&self, key: InstanceKey) -> Result<(), RegistryError> {
        let inner = self.inner.clone();
        spawn_write(async move { inner.delete(&key).await }).await
    }

    /// Refuses new writes and waits up to `grace` for the ones in progress; `true` when all
    /// finished in time.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.inner.inflight.drain(grace).await
    }

    /// Evicts instances idle for longer than the configured time, every quarter of that time
    /// (between 1 s and 60 s). The task ends when the registry is dropped or drained. Should it
    /// ever fail, only idle-time eviction stops: the bound on hot instances still holds.
    pub fn start_sweeper(&self) -> tokio::task::JoinHandle<()> {
        evict::spawn_sweeper(Arc::downgrade(&self.inner))
    }

    /// Evicts every idle entry unused for at least `idle`; returns how many went.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        self.inner.evict_idle_for(idle_ms)
    }
}

/// Runs a write on its own task so that a dropped request cannot cancel it mid-commit.
async fn spawn_write<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, RegistryError>> + Send + 'static,
) -> Result<T, RegistryError> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) => Err(RegistryError::TaskFailed(e.to_string())),
    }
}
