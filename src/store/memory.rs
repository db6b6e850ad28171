//! An in-memory [`Store`]: every table is a `BTreeMap`, all of them behind one mutex.
//!
//! Not durable: everything is gone when the process exits. This is the backend for tests and
//! for the ephemeral `--store memory` mode. Its compare-and-set, paging and ordering rules are
//! those of the durable backends, checked by the same contract suite (`store::contract`).
//!
//! Every call takes the mutex once, does its work on the maps and returns; no call awaits
//! while holding it. Writes after [`Store::shutdown`] fail with `StoreError::Unavailable`.
//!
//! The wake-up index is a sorted set under the same mutex, changed in the same critical
//! section as the row, so it is exact: one entry per instance whose row has a wake time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{
    encode_cursor, CasOutcome, Commit, Expect, InstanceRecord, InstanceSummary, KeyRecord,
    MachineRecord, Page, PageRequest, Store, StoreError, TransitionRecord, UploadRecord,
    VersionRecord, Wakeup,
};
use crate::ids::{InstanceKey, InstanceName, KeyId, MachineName, MachineVersionId};

/// A non-durable store for tests and ephemeral servers.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Where a version sits in its machine's listing: creation time, then id to break ties.
type VersionOrder = (i64, MachineVersionId);

#[derive(Default)]
struct Tables {
    shut_down: bool,
    machines: BTreeMap<MachineName, MachineRecord>,
    versions: HashMap<MachineName, MachineVersions>,
    bundles: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, UploadRecord>,
    /// Per machine, instances by name. Empty inner maps are removed.
    instances: BTreeMap<MachineName, BTreeMap<InstanceName, InstanceRecord>>,
    /// Per instance, history by the version each transition produced.
    transitions: HashMap<InstanceKey, BTreeMap<u64, TransitionRecord>>,
    /// `(wake_at_ms, key)` of every instance whose row has a wake time.
    wakeups: BTreeSet<Wakeup>,
    keys: BTreeMap<KeyId, KeyRecord>,
    meta: HashMap<String, Vec<u8>>,
}

#[derive(Default)]
struct MachineVersions {
    by_order: BTreeMap<VersionOrder, VersionRecord>,
    created_by_id: HashMap<MachineVersionId, i64>,
}

impl Tables {
    fn writable(&mut self) -> Result<&mut Self, StoreError> {
        if self.shut_down {
            Err(StoreError::Unavailable("store is shut down".to_owned()))
        } else {
            Ok(self)
        }
    }

    /// Moves the instance's index entry from `old` to `new` wake time.
    fn move_wakeup(&mut self, key: &InstanceKey, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(wake_at_ms) = old {
            self.wakeups.remove(&Wakeup {
                wake_at_ms,
                key: key.clone(),
            });
        }
        if let Some(wake_at_ms) = new {
            self.wakeups.insert(Wakeup {
                wake_at_ms,
                key: key.clone(),
            });
        }
    }
}

/// Takes up to `limit` items from `iter`; sets the cursor from the last one kept when more
/// remain.
fn page_of<K, T>(
    iter: impl Iterator<Item = (K, T)>,
    limit: usize,
    position_of: impl Fn(&K) -> Vec<u8>,
) -> Page<T> {
    let mut rows: Vec<(K, T)> = iter.take(limit.saturating_add(1)).collect();
    let more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = match rows.last() {
        Some((k, _)) if more => Some(encode_cursor(&position_of(k))),
        _ => None,
    };
    Page {
        items: rows.into_iter().map(|(_, t)| t).collect(),
        cursor,
    }
}

/// A name-keyed cursor position must be a valid name of that kind.
fn name_position<T>(
    position: Option<Vec<u8>>,
    parse: impl Fn(String) -> Option<T>,
) -> Result<Bound<T>, StoreError> {
    match position {
        None => Ok(Bound::Unbounded),
        Some(bytes) => {
            let s = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
            parse(s)
                .map(Bound::Excluded)
                .ok_or(StoreError::InvalidCursor)
        }
    }
}

fn version_position(order: &VersionOrder) -> Vec<u8> {
    let mut out = order.0.to_be_bytes().to_vec();
    out.extend_from_slice(order.1.as_str().as_bytes());
    out
}

fn parse_version_position(bytes: &[u8]) -> Option<VersionOrder> {
    let (ms, id) = bytes.split_first_chunk::<8>()?;
    let id = MachineVersionId::parse(std::str::from_utf8(id).ok()?)?;
    Some((i64::from_be_bytes(*ms), id))
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_machine(&self, m: &MachineRecord) -> Result<bool, StoreError> {
        let mut t = self.tables.lock();
        let t = t.writable()?;
        if t.machines.contains_key(&m.name) {
            return Ok(false);
        }
        t.machines.insert(m.name.clone(), m.clone());
        Ok(true)
    }

    async fn get_machine(&self, name: &MachineName) -> Result<Option<MachineRecord>, StoreError> {
        Ok(self.tables.lock().machines.get(name).cloned())
    }

    async fn list_machines(&self, page: &PageRequest) -> Result<Page<MachineRecord>, StoreError> {
        let after = name_position(page.position()?, |s| MachineName::parse(s).ok())?;
        let t = self.tables.lock();
        let rows = t
            .machines
            .range((after, Bound::Unbounded))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(page_of(rows, page.effective_limit(), |k| {
            k.as_str().as_bytes().to_vec()
        }))
    }

    /// Does nothing when the machine does not exist.
    async fn set_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        if let Some(m) = t.writable()?.machines.get_mut(name) {
            m.current_version = Some(version.clone());
        }
        Ok(())
    }

    async fn delete_machine(&self, name: &MachineName) -> Result<bool, StoreError> {
        let mut t = self.tables.lock();
        let t = t.writable()?;
        t.versions.remove(name);
        Ok(t.machines.remove(name).is_some())
    }

    async fn put_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        t.writable()?
            .bundles
            .entry(hash.to_owned())
            .or_insert_with(|| code.to_vec());
        Ok(())
    }

    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables.lock().bundles.get(hash).cloned())
    }

    async fn put_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        let versions = t.writable()?.versions.entry(v.machine.clone()).or_default();
        if let Some(old) = versions.created_by_id.insert(v.id.clone(), v.created_at_ms) {
            versions.by_order.remove(&(old, v.id.clone()));
        }
        versions
            .by_order
            .insert((v.created_at_ms, v.id.clone()), v.clone());
        Ok(())
    }

    async fn get_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let t = self.tables.lock();
        let Some(versions) = t.versions.get(machine) else {
            return Ok(None);
        };
        Ok(versions
            .created_by_id
            .get(id)
            .and_then(|ms| versions.by_order.get(&(*ms, id.clone())))
            .cloned())
    }

    async fn list_versions(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        let before = match page.position()? {
            None => Bound::Unbounded,
            Some(bytes) => {
                Bound::Excluded(parse_version_position(&bytes).ok_or(StoreError::InvalidCursor)?)
            }
        };
        let t = self.tables.lock();
        let Some(versions) = t.versions.get(machine) else {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
            });
        };
        let rows = versions
            .by_order
            .range((Bound::Unbounded, before))
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(page_of(rows, page.effective_limit(), version_position))
    }

    async fn put_upload(&self, u: &UploadRecord) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        t.writable()?.uploads.insert(u.id.clone(), u.clone());
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        Ok(self.tables.lock().uploads.get(id).cloned())
    }

    async fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        t.writable()?.uploads.remove(id);
        Ok(())
    }

    async fn load_instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        let t = self.tables.lock();
        Ok(t.instances
            .get(&key.machine)
            .and_then(|m| m.get(&key.instance))
            .cloned())
    }

    async fn load_instance_linearizable(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        self.load_instance(key).await
    }

    async fn commit(&self, c: Commit) -> Result<CasOutcome, StoreError> {
        let version = c.validate()?;
        let mut t = self.tables.lock();
        let t = t.writable()?;
        let stored = t
            .instances
            .get(&c.key.machine)
            .and_then(|m| m.get(&c.key.instance));
        let current = stored.map(|r| r.version);
        let old_wake = stored.and_then(|r| r.effects.wake_at_ms);
        let holds = match c.expect {
            Expect::Absent => current.is_none(),
            Expect::Version(n) => current == Some(n),
        };
        if !holds {
            return Ok(CasOutcome::Conflict { current });
        }
        t.move_wakeup(&c.key, old_wake, c.next.effects.wake_at_ms);
        t.instances
            .entry(c.key.machine.clone())
            .or_default()
            .insert(c.key.instance.clone(), c.next);
        if let Some(transition) = c.transition {
            t.transitions
                .entry(c.key)
                .or_default()
                .insert(version, transition);
        }
        Ok(CasOutcome::Applied { version })
    }

    async fn list_instances(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        let after = name_position(page.position()?, |s| InstanceName::parse(s).ok())?;
        let t = self.tables.lock();
        let Some(instances) = t.instances.get(machine) else {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
            });
        };
        let rows = instances.range((after, Bound::Unbounded)).map(|(name, r)| {
            let summary = InstanceSummary {
                name: name.to_string(),
                created_at_ms: r.created_at_ms,
                machine_version: r.machine_version.clone(),
                status: r.status,
            };
            (name.clone(), summary)
        });
        Ok(page_of(rows, page.effective_limit(), |k| {
            k.as_str().as_bytes().to_vec()
        }))
    }

    async fn has_instances(&self, machine: &MachineName) -> Result<bool, StoreError> {
        let t = self.tables.lock();
        Ok(t.instances.get(machine).is_some_and(|m| !m.is_empty()))
    }

    async fn list_transitions(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError> {
        let before = match page.position()? {
            None => Bound::Unbounded,
            Some(bytes) => {
                let be: [u8; 8] = bytes.try_into().map_err(|_| StoreError::InvalidCursor)?;
                Bound::Excluded(u64::from_be_bytes(be))
            }
        };
        let t = self.tables.lock();
        let Some(history) = t.transitions.get(key) else {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
            });
        };
        let rows = history
            .range((Bound::Unbounded, before))
            .rev()
            .map(|(v, r)| (*v, r.clone()));
        Ok(page_of(rows, page.effective_limit(), |v| {
            v.to_be_bytes().to_vec()
        }))
    }

    async fn delete_instance(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        let mut t = self.tables.lock();
        let t = t.writable()?;
        t.transitions.remove(key);
        let Some(instances) = t.instances.get_mut(&key.machine) else {
            return Ok(false);
        };
        let removed = instances.remove(&key.instance);
        if instances.is_empty() {
            t.instances.remove(&key.machine);
        }
        let Some(removed) = removed else {
            return Ok(false);
        };
        t.move_wakeup(key, removed.effects.wake_at_ms, None);
        Ok(true)
    }

    async fn wakeups_after(
        &self,
        after: Option<&Wakeup>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let t = self.tables.lock();
        Ok(t.wakeups
            .range((start, Bound::Unbounded))
            .take_while(|w| w.wake_at_ms <= until_ms)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        t.writable()?.keys.insert(k.id.clone(), k.clone());
        Ok(())
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.tables.lock().keys.get(id).cloned())
    }

    async fn list_keys(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError> {
        let after = name_position(page.position()?, |s| KeyId::parse(&s))?;
        let t = self.tables.lock();
        let rows = t
            .keys
            .range((after, Bound::Unbounded))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(page_of(rows, page.effective_limit(), |k| {
            k.as_str().as_bytes().to_vec()
        }))
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        let mut t = self.tables.lock();
        Ok(t.writable()?.keys.remove(id).is_some())
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables.lock().meta.get(name).cloned())
    }

    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut t = self.tables.lock();
        t.writable()?.meta.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), StoreError> {
        self.tables.lock().shut_down = true;
        Ok(())
    }
}
