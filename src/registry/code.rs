//! Machine code per version, read from the store once and kept.
//!
//! Versions are immutable, so a cached entry never goes stale. The cache keeps every version
//! used since start; a server has few versions and their code is shared with the runtime's own
//! caches (the bytes are one `Arc`), so it is not bounded.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

use super::RegistryError;
use crate::ids::{MachineName, MachineVersionId};
use crate::runtime::MachineCode;
use crate::store::Store;

type CodeKey = (MachineName, MachineVersionId);

pub(super) struct CodeCache {
    store: Arc<dyn Store>,
    max_bundle_bytes: usize,
    cells: DashMap<CodeKey, Arc<OnceCell<MachineCode>>>,
}

impl CodeCache {
    pub fn new(store: Arc<dyn Store>, max_bundle_bytes: usize) -> Self {
        Self {
            store,
            max_bundle_bytes,
            cells: DashMap::new(),
        }
    }

    /// The code of `version`, which must belong to `machine`. Concurrent first calls share one
    /// load; a failed load is retried by the next call.
    pub async fn get(
        &self,
        machine: &MachineName,
        version: &MachineVersionId,
    ) -> Result<MachineCode, RegistryError> {
        let cell = self
            .cells
            .entry((machine.clone(), version.clone()))
            .or_default()
            .value()
            .clone();
        let result = cell
            .get_or_try_init(|| self.load(machine, version))
            .await
            .cloned();
        if result.is_err() {
            self.cells
                .remove_if(&(machine.clone(), version.clone()), |_, c| {
                    Arc::ptr_eq(c, &cell) && !c.initialized()
                });
        }
        result
    }

    async fn load(
        &self,
        machine: &MachineName,
        version: &MachineVersionId,
    ) -> Result<MachineCode, RegistryError> {
        let Some(record) = self.store.get_version(machine, version).await? else {
            return Err(RegistryError::VersionNotFound {
                machine: machine.clone(),
                version: version.clone(),
            });
        };
        let Some(bytes) = self.store.get_bundle(&record.code_hash).await? else {
            return Err(RegistryError::MissingCode(record.code_hash));
        };
        let code = MachineCode::new(bytes, self.max_bundle_bytes)?;
        tracing::debug!(%machine, %version, bytes = code.bytes.len(), "machine code loaded");
        Ok(code)
    }
}
