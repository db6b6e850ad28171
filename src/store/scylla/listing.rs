//! The per-machine name index: listing instances in name order and "has instances".
//!
//! The index is written before an instance is created and cleared after it is deleted, so an
//! entry can name an instance that does not exist (a failed create); every reader checks the
//! instance row and skips such entries.

use futures_util::future::try_join_all;

use super::errors::{from_execution, malformed};
use super::instances::key_values;
use super::rows::{cql_limit, cursor_text};
use super::ScyllaStore;
use crate::ids::{InstanceKey, InstanceName, MachineName};
use crate::store::{encode_cursor, InstanceSummary, Page, PageRequest, StoreError};

/// Names read from the index per round trip by `has_instances`.
const PROBE_BATCH: usize = 100;

impl ScyllaStore {
    pub(super) async fn insert_name(&self, key: &InstanceKey) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.st.name_insert, key_values(key))
            .await
            .map_err(|e| from_execution("name_insert", e))?;
        Ok(())
    }

    pub(super) async fn delete_name(&self, key: &InstanceKey) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.st.name_delete, key_values(key))
            .await
            .map_err(|e| from_execution("name_delete", e))?;
        Ok(())
    }

    /// Up to `limit` names after `after`, in name order.
    async fn names(
        &self,
        machine: &MachineName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<InstanceName>, StoreError> {
        let limit = cql_limit(limit);
        let result = match after {
            None => {
                self.session
                    .execute_unpaged(&self.st.names_first, (machine.as_str(), limit))
                    .await
            }
            Some(after) => {
                self.session
                    .execute_unpaged(&self.st.names_after, (machine.as_str(), after, limit))
                    .await
            }
        }
        .map_err(|e| from_execution("instance_names", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| malformed("instance_names", e))?;
        rows.rows::<(String,)>()
            .map_err(|e| malformed("instance_names", e))?
            .map(|r| {
                let (name,) = r.map_err(|e| malformed("instance_names", e))?;
                InstanceName::parse(name).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    pub(super) async fn list_instance_page(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        let limit = page.effective_limit();
        let mut after = cursor_text(page)?;
        if let Some(a) = &after {
            InstanceName::parse(a.as_str()).map_err(|_| StoreError::InvalidCursor)?;
        }
        let mut items: Vec<(InstanceName, InstanceSummary)> = Vec::new();
        // Read one more than the page so the cursor is set only when another item exists.
        while items.len() <= limit {
            let want = limit + 1 - items.len();
            let names = self.names(machine, after.as_deref(), want).await?;
            let exhausted = names.len() < want;
            after = names.last().map(|n| n.as_str().to_owned());
            let rows = try_join_all(names.into_iter().map(|name| async move {
                let key = InstanceKey::new(machine.clone(), name);
                let row = self.load_instance_at(&key, false).await?;
                Ok::<_, StoreError>((key.instance, row))
            }))
            .await?;
            items.extend(rows.into_iter().filter_map(|(name, row)| {
                let r = row?;
                let summary = InstanceSummary {
                    name: name.as_str().to_owned(),
                    created_at_ms: r.created_at_ms,
                    machine_version: r.machine_version,
                    status: r.status,
                };
                Some((name, summary))
            }));
            if exhausted {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = match items.last() {
            Some((name, _)) if more => Some(encode_cursor(name.as_str().as_bytes())),
            _ => None,
        };
        Ok(Page {
            items: items.into_iter().map(|(_, s)| s).collect(),
            cursor,
        })
    }

    /// True as soon as one indexed name has an instance row.
    pub(super) async fn machine_has_instances(
        &self,
        machine: &MachineName,
    ) -> Result<bool, StoreError> {
        let mut after: Option<String> = None;
        loop {
            let names = self.names(machine, after.as_deref(), PROBE_BATCH).await?;
            let exhausted = names.len() < PROBE_BATCH;
            after = names.last().map(|n| n.as_str().to_owned());
            for name in names {
                let key = InstanceKey::new(machine.clone(), name);
                if self.load_instance_at(&key, false).await?.is_some() {
                    return Ok(true);
                }
            }
            if exhausted {
                return Ok(false);
            }
        }
    }
}
