//! Durable state behind one trait, with two backends and one contract test suite.
//!
//! - `embedded`: the default, a single redb file under the data directory, written by one
//!   writer thread that batches concurrent commits into one durable transaction (group commit).
//! - `scylla`: ScyllaDB with lightweight transactions, for deployments beyond one machine.
//! - `memory`: maps behind a mutex; not durable, for tests and the ephemeral `--store memory`.
//! - `contract`: the behaviour every backend must show, run against each of them.
//! - `effects`: timers, service markers, outbox and received ids kept in the instance row.
//!
//! Every instance write is a compare-and-set on the instance's `version`. A caller is answered
//! only after its write is durable. Records are encoded by the backend (JSON bytes with a
//! format version), never by the storage engine's own type encoding.
//!
//! Each backend also keeps a wake-up index: for every instance whose
//! [`EffectState::wake_at_ms`] is set, an entry `(wake_at_ms, key)` written in the same atomic
//! write as the row, so a node can find the instances it must act on without scanning them
//! all (see [`Store::due_wakeups`]).

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{InstanceKey, KeyId, MachineName, MachineVersionId};

pub use effects::{
    EffectState, OutboxKind, OutboxMessage, ServiceMarker, ServiceState, TimerRecord,
    RECEIVED_CAPACITY,
};

pub mod contract;
pub mod effects;
pub mod embedded;
pub mod memory;
pub mod scylla;

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The write may or may not have been applied (CAS timeout, connection lost mid-write).
    /// The caller settles it by a linearizable read and a comparison of `write_id`.
    #[error("store write outcome unknown")]
    Unknown,
    /// Nothing was applied and the call may be retried later (overload, shutting down).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed; after an I/O error on commit the embedded store refuses further
    /// writes until restarted.
    #[error("store backend error: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A page cursor sent by a client is not one this store handed out.
    #[error("invalid page cursor")]
    InvalidCursor,
}

/// `running` or `paused` (State Backed's `MachineInstanceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Running,
    Paused,
}

/// A machine: a named slot for versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub name: MachineName,
    pub created_at_ms: i64,
    pub indexes: Vec<String>,
    pub current_version: Option<MachineVersionId>,
}

/// A finalized, immutable machine version. Its code lives in the bundle table by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub machine: MachineName,
    pub id: MachineVersionId,
    pub created_at_ms: i64,
    pub client_info: String,
    /// SHA-256 hex of the unzipped module bytes.
    pub code_hash: String,
    pub index_selectors: Value,
}

/// A provisional version between the upload steps: created by `POST …/v`, filled by the
/// multipart upload, consumed by the finalizing `PUT`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The signed id handed to the client (`machineVersionId` of step 1).
    pub id: String,
    pub machine: MachineName,
    pub gzip: bool,
    pub created_at_ms: i64,
    /// SHA-256 hex of the uploaded, unzipped code once the upload step has run.
    pub code_hash: Option<String>,
}

/// An instance as stored: the snapshot that the next event starts from and its public view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub machine_version: MachineVersionId,
    pub desired_machine_version: Option<MachineVersionId>,
    pub status: InstanceStatus,
    /// Compare-and-set token: 1 after create, +1 per accepted write, including writes that
    /// change only effect state (which are not transitions).
    pub version: u64,
    /// Client-visible timestamp (ms since epoch), strictly increasing per transition. A write
    /// that changes only effect state keeps it as it was.
    pub ts_ms: i64,
    /// The guest's opaque snapshot JSON.
    pub snapshot: String,
    pub state: Value,
    /// Full context; only `context.public` leaves the server.
    pub context: Value,
    pub tags: Vec<String>,
    pub done: bool,
    /// Id of the write that produced this version (settles an unknown outcome).
    pub write_id: uuid::Uuid,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Timers, service markers, outbox and received ids, committed with the snapshot.
    /// Absent in records written before effect state existed, which decode as empty.
    #[serde(default, skip_serializing_if = "EffectState::is_empty")]
    pub effects: EffectState,
}

/// One accepted event in an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// The instance version this transition produced.
    pub version: u64,
    pub created_at_ms: i64,
    pub event: Value,
    pub state: Value,
}

/// A signing key. The secret is kept because HS256 verification needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub name: String,
    pub scopes: Vec<String>,
    pub secret: String,
    pub created_at_ms: i64,
}

/// What a compare-and-set expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The instance must not exist (create).
    Absent,
    /// The instance must be at exactly this version.
    Version(u64),
}

impl Expect {
    /// The version a write under this expectation produces: 1 for a create, `n + 1` otherwise.
    /// `None` when `n + 1` overflows, which no stored instance can reach.
    pub fn next_version(self) -> Option<u64> {
        match self {
            Expect::Absent => Some(1),
            Expect::Version(n) => n.checked_add(1),
        }
    }
}

/// One compare-and-set of an instance, with the history entry it produces.
///
/// A write that is not a transition (a status change, or an effect-only update such as a
/// failed timer attempt or a service marker changing state) carries `transition: None` and
/// keeps `ts_ms`: the version still moves by one, because it is the compare-and-set token, but
/// the client-visible timestamp and the history do not.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub key: InstanceKey,
    pub expect: Expect,
    /// The record to store; its `version` must be the expected one plus one (1 for a create).
    pub next: InstanceRecord,
    pub transition: Option<TransitionRecord>,
}

impl Commit {
    /// Checks that `next` (and the transition, if any) carry the version this commit produces.
    /// A mismatch is a caller bug, refused before anything is compared or written.
    pub fn validate(&self) -> Result<u64, StoreError> {
        let Some(version) = self.expect.next_version() else {
            return Err(StoreError::Backend(format!(
                "commit for {} expects {:?}, which has no successor",
                self.key, self.expect
            )));
        };
        if self.next.version != version {
            return Err(StoreError::Backend(format!(
                "commit for {} must carry version {version}, not {}",
                self.key, self.next.version
            )));
        }
        if let Some(t) = &self.transition {
            if t.version != version {
                return Err(StoreError::Backend(format!(
                    "transition for {} must carry version {version}, not {}",
                    self.key, t.version
                )));
            }
        }
        Ok(version)
    }
}

/// The result of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    Applied {
        version: u64,
    },
    /// The expectation did not hold; `current` is the stored version, if any.
    Conflict {
        current: Option<u64>,
    },
}

/// A page request: an opaque cursor from a previous page, and a size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Page size used when a request asks for 0 items.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

impl PageRequest {
    /// The number of items to return: `limit`, or [`DEFAULT_PAGE_LIMIT`] when it is 0.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            DEFAULT_PAGE_LIMIT
        } else {
            self.limit
        }
    }

    /// The position after which the page starts, decoded from the opaque cursor.
    pub fn position(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// Wraps a backend's position (the last key of a page) into an opaque cursor.
pub fn encode_cursor(position: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

/// The inverse of [`encode_cursor`]; anything that is not unpadded base64url is refused.
pub fn decode_cursor(cursor: &str) -> Result<Vec<u8>, StoreError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)
}

/// A page of results; `cursor` is set only when another page exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// One row of an instance listing.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    pub name: String,
    pub created_at_ms: i64,
    pub machine_version: MachineVersionId,
    pub status: InstanceStatus,
}

/// One entry of the wake-up index: the instance `key` asked to be woken at `wake_at_ms`.
///
/// Entries order by time, then by key (machine, then instance name), which is the order
/// [`Store::due_wakeups`] returns them in and the position [`Store::wakeups_after`] resumes
/// from. An entry is a hint: the row is the truth, and whoever acts on an entry re-reads the
/// row first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wakeup {
    pub wake_at_ms: i64,
    pub key: InstanceKey,
}

/// Durable state of the server. Implementations are shared as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the machine; `false` when one with that name exists.
    async fn create_machine(&self, m: &MachineRecord) -> Result<bool, StoreError>;
    async fn get_machine(&self, name: &MachineName) -> Result<Option<MachineRecord>, StoreError>;
    async fn list_machines(&self, page: &PageRequest) -> Result<Page<MachineRecord>, StoreError>;
    async fn set_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError>;
    /// Deletes the machine with its versions; `false` when it did not exist. The caller checks
    /// that no instance exists first.
    async fn delete_machine(&self, name: &MachineName) -> Result<bool, StoreError>;

    /// Stores code under its hash (idempotent).
    async fn put_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError>;
    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn put_version(&self, v: &VersionRecord) -> Result<(), StoreError>;
    async fn get_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// Versions of one machine, newest first.
    async fn list_versions(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError>;

    async fn put_upload(&self, u: &UploadRecord) -> Result<(), StoreError>;
    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError>;
    async fn delete_upload(&self, id: &str) -> Result<(), StoreError>;

    async fn load_instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError>;
    /// A read that sees every write acknowledged before it began (SERIAL on ScyllaDB).
    async fn load_instance_linearizable(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<InstanceRecord>, StoreError>;
    /// One durable compare-and-set. Returns only after the write is durable.
    async fn commit(&self, c: Commit) -> Result<CasOutcome, StoreError>;
    /// Instances of one machine, by name.
    async fn list_instances(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError>;
    /// True when the machine has at least one instance.
    async fn has_instances(&self, machine: &MachineName) -> Result<bool, StoreError>;
    /// History of one instance, newest first.
    async fn list_transitions(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError>;
    /// Deletes the instance and its history; `false` when it did not exist.
    async fn delete_instance(&self, key: &InstanceKey) -> Result<bool, StoreError>;

    /// Up to `limit` wake-up entries with `wake_at_ms <= until_ms`, earliest first.
    /// Shorthand for [`Store::wakeups_after`] from the start of the index.
    async fn due_wakeups(&self, until_ms: i64, limit: usize) -> Result<Vec<Wakeup>, StoreError> {
        self.wakeups_after(None, until_ms, limit).await
    }

    /// Up to `limit` wake-up entries ordered after `after` (exclusive; `None` for the start)
    /// with `wake_at_ms <= until_ms`, in [`Wakeup`] order. Paging with the last entry returned
    /// walks past entries the caller has already handled.
    ///
    /// The index never misses an instance whose row has `wake_at_ms` set: the entry is written
    /// in the same atomic write as the row (the memory and embedded stores), or before it
    /// (ScyllaDB). The memory and embedded indexes are exact: an entry exists exactly while
    /// the row carries that `wake_at_ms`. The ScyllaDB index may also return stale entries
    /// (an old `wake_at_ms`, a failed write, a deleted instance), and only looks back a bounded
    /// window; see `store::scylla` for both limits.
    ///
    /// Stores without an index (such as test wrappers that do not forward this call) answer
    /// with `StoreError::Backend`; every backend of this crate keeps one.
    async fn wakeups_after(
        &self,
        after: Option<&Wakeup>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let _ = (after, until_ms, limit);
        Err(StoreError::Backend(
            "this store keeps no wake-up index".to_owned(),
        ))
    }

    async fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError>;
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;
    async fn list_keys(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError>;
    async fn delete_key(&self, id: &KeyId) -> Result<bool, StoreError>;

    /// Small server-wide values (format version, org id).
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Finishes queued writes and stops accepting new ones.
    async fn shutdown(&self) -> Result<(), StoreError>;
}
