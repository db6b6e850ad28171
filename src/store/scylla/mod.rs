//! The ScyllaDB store: every instance write is one lightweight transaction.
//!
//! - `config`: connection settings and `STATEWIRE_SCYLLA_*` variables.
//! - `connect`: opening the session and checking the schema.
//! - `statements`: every CQL statement, prepared once at connect.
//! - `instances`: load, commit and delete of instance rows; `settle` decides commits whose
//!   reply was lost; `lwt` reads `[applied]` replies; `errors` classifies driver failures.
//! - `history`: transition rows in version buckets; `listing`: the per-machine name index.
//! - `wakeups`: the wake-up index, written as an intent before each transaction that sets a
//!   wake time, expired by TTL; it may return stale entries and looks back a bounded window.
//! - `catalog`: machines, versions, bundles, uploads, keys and server-wide values.
//! - `schema`: `schema.cql`, its template fields and the tables it defines.
//!
//! Consistency: plain reads and writes at `consistency` (LOCAL_QUORUM by default); the Paxos
//! phase of transactions at `serial_consistency` (LOCAL_SERIAL by default); linearizable reads
//! at the serial level. Transactions are never retried by the driver. docs/scylla.md explains
//! the choices and what they cost per event.

mod catalog;
pub mod config;
mod connect;
mod errors;
mod history;
mod instances;
mod listing;
mod lwt;
mod rows;
pub mod schema;
mod settle;
mod statements;
mod wakeups;

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use scylla::client::session::Session;
use tracing::info;

pub use catalog::BUNDLE_CHUNK_BYTES;
pub use config::{ConsistencyLevel, ScyllaConfig, ScyllaConfigError, SerialConsistencyLevel};
pub use connect::{open_session, verify_schema};
pub use history::HISTORY_BUCKET_VERSIONS;
pub use statements::{statement_texts, StatementKind, StatementText};
pub use wakeups::{
    indexed_time, ttl_seconds, wakeup_bucket, wakeup_shard, INTENT_CACHE_ENTRIES, WAKEUP_BUCKET_MS,
    WAKEUP_LOOKBACK_MS, WAKEUP_MAX_AHEAD_MS, WAKEUP_RETENTION_MS, WAKEUP_SHARDS,
};

use super::{
    CasOutcome, Commit, InstanceRecord, InstanceSummary, KeyRecord, MachineRecord, Page,
    PageRequest, Store, StoreError, TransitionRecord, UploadRecord, VersionRecord, Wakeup,
};
use crate::ids::{InstanceKey, KeyId, MachineName, MachineVersionId};
use statements::Statements;
use wakeups::IntentCache;

/// A [`Store`] on a ScyllaDB (or Cassandra 4+) cluster.
pub struct ScyllaStore {
    session: Session,
    st: Statements,
    closed: AtomicBool,
    /// Wake-up entries this process has written, so unchanged wake times are not rewritten.
    intents: IntentCache,
}

impl ScyllaStore {
    /// Connects, checks the schema (unless `verify_schema` is off) and prepares every
    /// statement. Fails with a precise message when the cluster is unreachable or the
    /// keyspace, a table or a column is missing.
    pub async fn connect(config: &ScyllaConfig) -> Result<ScyllaStore, StoreError> {
        let session = open_session(config).await?;
        if config.verify_schema {
            verify_schema(&session, &config.keyspace).await?;
        }
        let mut st = Statements::prepare(&session, config).await?;
        st.chunks_select
            .set_page_size(catalog::BUNDLE_CHUNKS_PER_PAGE);
        info!(
            nodes = ?config.contact_points(),
            keyspace = %config.keyspace,
            consistency = ?config.consistency,
            serial_consistency = ?config.serial_consistency,
            "scylla store connected"
        );
        Ok(ScyllaStore {
            session,
            st,
            closed: AtomicBool::new(false),
            intents: IntentCache::default(),
        })
    }

    fn ensure_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Unavailable("store is shut down".to_owned()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for ScyllaStore {
    async fn create_machine(&self, m: &MachineRecord) -> Result<bool, StoreError> {
        self.insert_machine(m).await
    }

    async fn get_machine(&self, name: &MachineName) -> Result<Option<MachineRecord>, StoreError> {
        self.select_machine(name).await
    }

    async fn list_machines(&self, page: &PageRequest) -> Result<Page<MachineRecord>, StoreError> {
        self.machine_page(page).await
    }

    /// Does nothing when the machine does not exist.
    async fn set_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError> {
        self.update_current_version(name, version).await
    }

    async fn delete_machine(&self, name: &MachineName) -> Result<bool, StoreError> {
        self.remove_machine(name).await
    }

    async fn put_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError> {
        self.write_bundle(hash, code).await
    }

    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_bundle(hash).await
    }

    async fn put_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        self.insert_version(v).await
    }

    async fn get_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.select_version(machine, id).await
    }

    async fn list_versions(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        self.version_page(machine, page).await
    }

    async fn put_upload(&self, u: &UploadRecord) -> Result<(), StoreError> {
        self.insert_upload(u).await
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        self.select_upload(id).await
    }

    async fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        self.remove_upload(id).await
    }

    async fn load_instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        self.load_instance_at(key, false).await
    }

    async fn load_instance_linearizable(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        self.load_instance_at(key, true).await
    }

    async fn commit(&self, c: Commit) -> Result<CasOutcome, StoreError> {
        self.commit_instance(c).await
    }

    async fn list_instances(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        self.list_instance_page(machine, page).await
    }

    async fn has_instances(&self, machine: &MachineName) -> Result<bool, StoreError> {
        self.machine_has_instances(machine).await
    }

    async fn list_transitions(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError> {
        self.list_history(key, page).await
    }

    async fn delete_instance(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        self.delete_instance_row(key).await
    }

    /// May return stale entries, and sees only a bounded window: from `after` (at most
    /// [`WAKEUP_RETENTION_MS`] back) or [`WAKEUP_LOOKBACK_MS`] before `min(until, now)`, up to
    /// [`WAKEUP_MAX_AHEAD_MS`] beyond now. See `wakeups`.
    async fn wakeups_after(
        &self,
        after: Option<&Wakeup>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        self.scan_wakeups(after, until_ms, limit).await
    }

    async fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        self.insert_key(k).await
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.select_key(id).await
    }

    async fn list_keys(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError> {
        self.key_page(page).await
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        self.remove_key(id).await
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.select_meta(name).await
    }

    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.insert_meta(name, value).await
    }

    /// Refuses writes from now on. Every write is acknowledged only after the cluster
    /// accepted it, so there is nothing queued to finish; connections close when the store
    /// is dropped.
    async fn shutdown(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        info!("scylla store shut down");
        Ok(())
    }
}
