//! A store that forwards to the in-memory store and lets tests watch and perturb it: it
//! counts instance loads, records which commits were applied (at the moment the inner store
//! answered), and can report the next applied commit as an unknown outcome.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use statewire::ids::{InstanceKey, KeyId, MachineName, MachineVersionId};
use statewire::store::memory::MemoryStore;
use statewire::store::{
    CasOutcome, Commit, InstanceRecord, InstanceSummary, KeyRecord, MachineRecord, Page,
    PageRequest, Store, StoreError, TransitionRecord, UploadRecord, VersionRecord,
};

#[derive(Default)]
pub struct ProbeStore {
    pub inner: MemoryStore,
    /// Calls of `load_instance` (not the linearizable read).
    pub loads: AtomicUsize,
    /// `(instance, version)` of every applied commit, in order.
    pub applied: Mutex<Vec<(InstanceKey, u64)>>,
    /// When set, the next applied commit is answered with `StoreError::Unknown`.
    pub unknown_after_next_apply: AtomicBool,
}

impl ProbeStore {
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    pub fn was_applied(&self, key: &InstanceKey, version: u64) -> bool {
        self.applied
            .lock()
            .iter()
            .any(|(k, v)| k == key && *v == version)
    }
}

#[async_trait]
impl Store for ProbeStore {
    async fn create_machine(&self, m: &MachineRecord) -> Result<bool, StoreError> {
        self.inner.create_machine(m).await
    }
    async fn get_machine(&self, name: &MachineName) -> Result<Option<MachineRecord>, StoreError> {
        self.inner.get_machine(name).await
    }
    async fn list_machines(&self, page: &PageRequest) -> Result<Page<MachineRecord>, StoreError> {
        self.inner.list_machines(page).await
    }
    async fn set_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError> {
        self.inner.set_current_version(name, version).await
    }
    async fn delete_machine(&self, name: &MachineName) -> Result<bool, StoreError> {
        self.inner.delete_machine(name).await
    }
    async fn put_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError> {
        self.inner.put_bundle(hash, code).await
    }
    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_bundle(hash).await
    }
    async fn put_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        self.inner.put_version(v).await
    }
    async fn get_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.get_version(machine, id).await
    }
    async fn list_versions(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        self.inner.list_versions(machine, page).await
    }
    async fn put_upload(&self, u: &UploadRecord) -> Result<(), StoreError> {
        self.inner.put_upload(u).await
    }
    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        self.inner.get_upload(id).await
    }
    async fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_upload(id).await
    }
    async fn load_instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        // Give racing callers time to pile up behind this load.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.inner.load_instance(key).await
    }
    async fn load_instance_linearizable(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        self.inner.load_instance_linearizable(key).await
    }
    async fn commit(&self, c: Commit) -> Result<CasOutcome, StoreError> {
        let key = c.key.clone();
        let outcome = self.inner.commit(c).await?;
        if let CasOutcome::Applied { version } = outcome {
            self.applied.lock().push((key, version));
            if self.unknown_after_next_apply.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Unknown);
            }
        }
        Ok(outcome)
    }
    async fn list_instances(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        self.inner.list_instances(machine, page).await
    }
    async fn has_instances(&self, machine: &MachineName) -> Result<bool, StoreError> {
        self.inner.has_instances(machine).await
    }
    async fn list_transitions(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError> {
        self.inner.list_transitions(key, page).await
    }
    async fn delete_instance(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        self.inner.delete_instance(key).await
    }
    async fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        self.inner.put_key(k).await
    }
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get_key(id).await
    }
    async fn list_keys(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError> {
        self.inner.list_keys(page).await
    }
    async fn delete_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        self.inner.delete_key(id).await
    }
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_meta(name).await
    }
    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_meta(name, value).await
    }
    async fn shutdown(&self) -> Result<(), StoreError> {
        self.inner.shutdown().await
    }
}
