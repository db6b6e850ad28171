//! The writes the writer thread knows, and how each one is applied inside a write transaction.
//!
//! Callers encode records before they queue an op, so the single writer thread only compares
//! versions and moves bytes. An op either succeeds, or is refused with an error that wrote
//! nothing (its own outcome), or meets a storage error, which aborts the whole batch.

use redb::{ReadableTable, StorageError, Table, WriteTransaction};

use super::layout::{self, decode_record, encode_record, instance_header, prefix_end};
use crate::ids::MachineVersionId;
use crate::store::{CasOutcome, Expect, MachineRecord, StoreError};

/// The tables an op can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TableId {
    Meta,
    Machines,
    Bundles,
    Uploads,
    Keys,
}

/// One queued write. Keys and values are already encoded (see `layout`).
#[derive(Debug)]
pub(super) enum Op {
    /// Insert or replace. Replies `Done`.
    Put {
        table: TableId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Insert unless the key exists. Replies `Flag(inserted)`.
    PutIfAbsent {
        table: TableId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove one key. Replies `Flag(existed)`.
    Delete { table: TableId, key: Vec<u8> },
    /// Point a machine at a version; nothing happens when the machine does not exist.
    SetCurrentVersion {
        machine_key: Vec<u8>,
        version: MachineVersionId,
    },
    /// Remove a machine with all its versions. Replies `Flag(existed)`.
    DeleteMachine {
        machine_key: Vec<u8>,
        prefix: Vec<u8>,
    },
    /// Insert or replace a version, moving it if its creation time changed.
    PutVersion {
        id_key: Vec<u8>,
        order_key: Vec<u8>,
        value: Vec<u8>,
    },
    /// The compare-and-set of an instance, moving its wake-up entry from the stored value's
    /// wake time to `wake_at_ms` (the one in `value`'s header). Replies `Cas`.
    Commit {
        instance_key: Vec<u8>,
        expect: Expect,
        version: u64,
        wake_at_ms: Option<i64>,
        value: Vec<u8>,
        transition: Option<(Vec<u8>, Vec<u8>)>,
    },
    /// Remove an instance, its history and its wake-up entry. Replies `Flag(existed)`.
    DeleteInstance {
        instance_key: Vec<u8>,
        history_prefix: Vec<u8>,
    },
}

impl Op {
    /// Roughly the bytes this op writes, for bounding a batch.
    pub(super) fn size_bytes(&self) -> usize {
        let payload = match self {
            Op::Put { key, value, .. } | Op::PutIfAbsent { key, value, .. } => {
                key.len() + value.len()
            }
            Op::PutVersion {
                id_key,
                order_key,
                value,
            } => id_key.len() + order_key.len() + value.len(),
            Op::Commit {
                instance_key,
                value,
                transition,
                ..
            } => {
                let history = transition.as_ref().map_or(0, |(k, v)| k.len() + v.len());
                instance_key.len() + value.len() + history
            }
            Op::Delete { key, .. } => key.len(),
            Op::SetCurrentVersion { machine_key, .. } => machine_key.len() + 256,
            Op::DeleteMachine { machine_key, .. } => machine_key.len(),
            Op::DeleteInstance { instance_key, .. } => instance_key.len(),
        };
        payload + 64
    }
}

/// What an op produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reply {
    Done,
    Flag(bool),
    Cas(CasOutcome),
}

type BytesTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

/// Every table, opened once per batch.
pub(super) struct Tables<'txn> {
    meta: BytesTable<'txn>,
    machines: BytesTable<'txn>,
    versions: BytesTable<'txn>,
    version_ids: BytesTable<'txn>,
    bundles: BytesTable<'txn>,
    uploads: BytesTable<'txn>,
    instances: BytesTable<'txn>,
    transitions: BytesTable<'txn>,
    keys: BytesTable<'txn>,
    wakeups: BytesTable<'txn>,
}

impl<'txn> Tables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            meta: txn.open_table(layout::META)?,
            machines: txn.open_table(layout::MACHINES)?,
            versions: txn.open_table(layout::VERSIONS)?,
            version_ids: txn.open_table(layout::VERSION_IDS)?,
            bundles: txn.open_table(layout::BUNDLES)?,
            uploads: txn.open_table(layout::UPLOADS)?,
            instances: txn.open_table(layout::INSTANCES)?,
            transitions: txn.open_table(layout::TRANSITIONS)?,
            keys: txn.open_table(layout::KEYS)?,
            wakeups: txn.open_table(layout::WAKEUPS)?,
        })
    }

    fn table(&mut self, id: TableId) -> &mut BytesTable<'txn> {
        match id {
            TableId::Meta => &mut self.meta,
            TableId::Machines => &mut self.machines,
            TableId::Bundles => &mut self.bundles,
            TableId::Uploads => &mut self.uploads,
            TableId::Keys => &mut self.keys,
        }
    }

    /// Applies one op. The outer error is a storage failure that spoils the transaction; the
    /// inner result is the op's own outcome.
    pub(super) fn apply(&mut self, op: &Op) -> Result<Result<Reply, StoreError>, StorageError> {
        let reply = match op {
            Op::Put { table, key, value } => {
                self.table(*table)
                    .insert(key.as_slice(), value.as_slice())?;
                Reply::Done
            }
            Op::PutIfAbsent { table, key, value } => {
                let t = self.table(*table);
                let exists = t.get(key.as_slice())?.is_some();
                if !exists {
                    t.insert(key.as_slice(), value.as_slice())?;
                }
                Reply::Flag(!exists)
            }
            Op::Delete { table, key } => {
                Reply::Flag(self.table(*table).remove(key.as_slice())?.is_some())
            }
            Op::SetCurrentVersion {
                machine_key,
                version,
            } => return self.set_current_version(machine_key, version),
            Op::DeleteMachine {
                machine_key,
                prefix,
            } => {
                let end = prefix_end(prefix);
                let range = prefix.as_slice()..end.as_slice();
                self.versions.retain_in(range.clone(), |_, _| false)?;
                self.version_ids.retain_in(range, |_, _| false)?;
                Reply::Flag(self.machines.remove(machine_key.as_slice())?.is_some())
            }
            Op::PutVersion {
                id_key,
                order_key,
                value,
            } => {
                let previous = self
                    .version_ids
                    .insert(id_key.as_slice(), order_key.as_slice())?
                    .map(|old| old.value().to_vec());
                if let Some(old) = previous.filter(|old| old != order_key) {
                    self.versions.remove(old.as_slice())?;
                }
                self.versions
                    .insert(order_key.as_slice(), value.as_slice())?;
                Reply::Done
            }
            Op::Commit {
                instance_key,
                expect,
                version,
                wake_at_ms,
                value,
                transition,
            } => {
                let stored = match self.instances.get(instance_key.as_slice())? {
                    None => None,
                    Some(stored) => match instance_header(stored.value()) {
                        Ok(header) => Some(header),
                        Err(e) => return Ok(Err(e)),
                    },
                };
                let current = stored.map(|h| h.version);
                let holds = match expect {
                    Expect::Absent => current.is_none(),
                    Expect::Version(n) => current == Some(*n),
                };
                if !holds {
                    return Ok(Ok(Reply::Cas(CasOutcome::Conflict { current })));
                }
                self.instances
                    .insert(instance_key.as_slice(), value.as_slice())?;
                if let Some((key, record)) = transition {
                    self.transitions.insert(key.as_slice(), record.as_slice())?;
                }
                let old_wake = stored.and_then(|h| h.wake_at_ms);
                self.move_wakeup(instance_key, old_wake, *wake_at_ms)?;
                Reply::Cas(CasOutcome::Applied { version: *version })
            }
            Op::DeleteInstance {
                instance_key,
                history_prefix,
            } => {
                let stored = self
                    .instances
                    .get(instance_key.as_slice())?
                    .map(|stored| instance_header(stored.value()));
                // A value whose header cannot be read is refused before anything is removed,
                // so its wake-up entry is never orphaned.
                let header = match stored.transpose() {
                    Ok(header) => header,
                    Err(e) => return Ok(Err(e)),
                };
                let end = prefix_end(history_prefix);
                self.transitions
                    .retain_in(history_prefix.as_slice()..end.as_slice(), |_, _| false)?;
                let Some(header) = header else {
                    return Ok(Ok(Reply::Flag(false)));
                };
                self.instances.remove(instance_key.as_slice())?;
                self.move_wakeup(instance_key, header.wake_at_ms, None)?;
                Reply::Flag(true)
            }
        };
        Ok(Ok(reply))
    }

    /// Moves an instance's wake-up entry from `old` to `new` wake time.
    fn move_wakeup(
        &mut self,
        instance_key: &[u8],
        old: Option<i64>,
        new: Option<i64>,
    ) -> Result<(), StorageError> {
        if old == new {
            return Ok(());
        }
        if let Some(wake_at_ms) = old {
            let key = layout::wakeup_key_of(wake_at_ms, instance_key);
            self.wakeups.remove(key.as_slice())?;
        }
        if let Some(wake_at_ms) = new {
            let key = layout::wakeup_key_of(wake_at_ms, instance_key);
            self.wakeups.insert(key.as_slice(), [].as_slice())?;
        }
        Ok(())
    }

    fn set_current_version(
        &mut self,
        machine_key: &[u8],
        version: &MachineVersionId,
    ) -> Result<Result<Reply, StoreError>, StorageError> {
        let stored = self.machines.get(machine_key)?.map(|v| v.value().to_vec());
        let Some(stored) = stored else {
            return Ok(Ok(Reply::Done));
        };
        let updated = decode_record::<MachineRecord>(&stored).and_then(|mut m| {
            m.current_version = Some(version.clone());
            encode_record(&m)
        });
        match updated {
            Ok(bytes) => {
                self.machines.insert(machine_key, bytes.as_slice())?;
                Ok(Ok(Reply::Done))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}
