//! Machines, versions, code bundles, uploads, signing keys and server-wide values.
//!
//! Machine rows are written only by lightweight transactions (create if absent, update or
//! delete if present), so they never mix Paxos and plain writes. Everything else is a plain,
//! idempotent write at the configured consistency.

use futures_util::future::try_join_all;
use futures_util::StreamExt;
use scylla::DeserializeRow;

use super::errors::{classify, from_execution, from_pager, malformed};
use super::lwt;
use super::rows::{cql_limit, cursor_text, json_text, KeyRow, MachineRow, UploadRow, VersionRow};
use super::ScyllaStore;
use crate::ids::{KeyId, MachineName, MachineVersionId};
use crate::store::{
    encode_cursor, KeyRecord, MachineRecord, Page, PageRequest, StoreError, UploadRecord,
    VersionRecord,
};

/// Largest chunk of bundle bytes stored in one cell.
pub const BUNDLE_CHUNK_BYTES: usize = 512 * 1024;

/// Bundle chunks fetched per page when reading a bundle (bounds memory per round trip).
pub(super) const BUNDLE_CHUNKS_PER_PAGE: i32 = 2;

/// Takes a page from rows fetched with one extra; `position` names the last kept row.
fn page_from<T>(mut rows: Vec<T>, limit: usize, position: impl Fn(&T) -> Vec<u8>) -> Page<T> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = match rows.last() {
        Some(last) if more => Some(encode_cursor(&position(last))),
        _ => None,
    };
    Page {
        items: rows,
        cursor,
    }
}

/// Where a version sits in its machine's listing: newest first, ties broken by id.
fn version_position(v: &VersionRecord) -> Vec<u8> {
    let mut out = v.created_at_ms.to_be_bytes().to_vec();
    out.extend_from_slice(v.id.as_str().as_bytes());
    out
}

fn parse_version_position(bytes: &[u8]) -> Option<(i64, String)> {
    let (ms, id) = bytes.split_first_chunk::<8>()?;
    Some((
        i64::from_be_bytes(*ms),
        String::from_utf8(id.to_vec()).ok()?,
    ))
}

#[derive(DeserializeRow)]
struct BundleRow {
    chunk_count: Option<i32>,
    size_bytes: Option<i64>,
}

impl ScyllaStore {
    pub(super) async fn insert_machine(&self, m: &MachineRecord) -> Result<bool, StoreError> {
        self.ensure_open()?;
        let current = m.current_version.as_ref().map(|v| v.as_str());
        let values = (m.name.as_str(), m.created_at_ms, &m.indexes, current);
        let result = self
            .session
            .execute_unpaged(&self.st.machine_insert, values)
            .await
            .map_err(|e| classify("machine_insert", &e).into_transaction_error())?;
        Ok(lwt::decode("machine_insert", result)?.applied)
    }

    pub(super) async fn select_machine(
        &self,
        name: &MachineName,
    ) -> Result<Option<MachineRecord>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.st.machine_select, (name.as_str(),))
            .await
            .map_err(|e| from_execution("machine_select", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| malformed("machine_select", e))?;
        rows.maybe_first_row::<MachineRow>()
            .map_err(|e| malformed("machine_select", e))?
            .map(MachineRow::into_record)
            .transpose()
    }

    pub(super) async fn machine_page(
        &self,
        page: &PageRequest,
    ) -> Result<Page<MachineRecord>, StoreError> {
        let limit = page.effective_limit();
        let fetch = cql_limit(limit + 1);
        let result = match cursor_text(page)? {
            None => {
                self.session
                    .execute_unpaged(&self.st.machines_first, (fetch,))
                    .await
            }
            Some(after) => {
                self.session
                    .execute_unpaged(&self.st.machines_after, (after, fetch))
                    .await
            }
        }
        .map_err(|e| from_execution("machines", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| malformed("machines", e))?;
        let machines = rows
            .rows::<MachineRow>()
            .map_err(|e| malformed("machines", e))?
            .map(|r| r.map_err(|e| malformed("machines", e))?.into_record())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_from(machines, limit, |m| {
            m.name.as_str().as_bytes().to_vec()
        }))
    }

    /// Does nothing when the machine does not exist.
    pub(super) async fn update_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError> {
        self.ensure_open()?;
        self.session
            .execute_unpaged(
                &self.st.machine_set_current,
                (version.as_str(), name.as_str()),
            )
            .await
            .map_err(|e| classify("machine_set_current", &e).into_transaction_error())?;
        Ok(())
    }

    pub(super) async fn remove_machine(&self, name: &MachineName) -> Result<bool, StoreError> {
        self.ensure_open()?;
        let result = self
            .session
            .execute_unpaged(&self.st.machine_delete, (name.as_str(),))
            .await
            .map_err(|e| classify("machine_delete", &e).into_transaction_error())?;
        let existed = lwt::decode("machine_delete", result)?.applied;
        self.session
            .execute_unpaged(&self.st.versions_delete, (name.as_str(),))
            .await
            .map_err(|e| from_execution("versions_delete", e))?;
        Ok(existed)
    }

    /// Writes the chunks, then the row that makes the bundle visible. Skips all of it when
    /// the bundle is already complete (bundles are addressed by the hash of their code).
    pub(super) async fn write_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError> {
        self.ensure_open()?;
        if self.bundle_manifest(hash).await?.is_some() {
            return Ok(());
        }
        let chunks: Vec<&[u8]> = code.chunks(BUNDLE_CHUNK_BYTES).collect();
        let count = i32::try_from(chunks.len())
            .map_err(|_| StoreError::Backend(format!("bundle {hash} has too many chunks")))?;
        try_join_all(chunks.iter().enumerate().map(|(i, data)| {
            self.session
                .execute_unpaged(&self.st.chunk_insert, (hash, i as i32, *data))
        }))
        .await
        .map_err(|e| from_execution("chunk_insert", e))?;
        let size = i64::try_from(code.len()).unwrap_or(i64::MAX);
        self.session
            .execute_unpaged(&self.st.bundle_insert, (hash, count, size))
            .await
            .map_err(|e| from_execution("bundle_insert", e))?;
        Ok(())
    }

    async fn bundle_manifest(&self, hash: &str) -> Result<Option<(usize, usize)>, StoreError> {
        let what = "bundle_select";
        let result = self
            .session
            .execute_unpaged(&self.st.bundle_select, (hash,))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        let Some(row) = rows
            .maybe_first_row::<BundleRow>()
            .map_err(|e| malformed(what, e))?
        else {
            return Ok(None);
        };
        let count = row.chunk_count.and_then(|c| usize::try_from(c).ok());
        let size = row.size_bytes.and_then(|s| usize::try_from(s).ok());
        match (count, size) {
            (Some(c), Some(s)) => Ok(Some((c, s))),
            _ => Err(StoreError::Corrupt(format!("bundle {hash}: bad manifest"))),
        }
    }

    /// Reassembles a bundle, checking that every chunk is present and the length matches.
    pub(super) async fn read_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((count, size)) = self.bundle_manifest(hash).await? else {
            return Ok(None);
        };
        let what = "chunks_select";
        let pager = self
            .session
            .execute_iter(self.st.chunks_select.clone(), (hash,))
            .await
            .map_err(|e| from_pager(what, e))?;
        let mut stream = pager
            .rows_stream::<(i32, Vec<u8>)>()
            .map_err(|e| malformed(what, e))?;
        let mut code = Vec::with_capacity(size);
        let mut expected_chunk = 0;
        while let Some(row) = stream.next().await {
            let (chunk, data) = row.map_err(|e| malformed(what, e))?;
            if chunk != expected_chunk {
                return Err(StoreError::Corrupt(format!(
                    "bundle {hash}: chunk {chunk} where {expected_chunk} was expected"
                )));
            }
            expected_chunk += 1;
            code.extend_from_slice(&data);
        }
        if expected_chunk as usize != count || code.len() != size {
            return Err(StoreError::Corrupt(format!(
                "bundle {hash}: {expected_chunk} chunks of {} bytes, manifest says {count} of {size}",
                code.len()
            )));
        }
        Ok(Some(code))
    }

    pub(super) async fn insert_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        self.ensure_open()?;
        let values = (
            v.machine.as_str(),
            v.id.as_str(),
            v.created_at_ms,
            v.client_info.as_str(),
            v.code_hash.as_str(),
            json_text(&v.index_selectors),
        );
        self.session
            .execute_unpaged(&self.st.version_insert, values)
            .await
            .map_err(|e| from_execution("version_insert", e))?;
        Ok(())
    }

    pub(super) async fn select_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let what = "version_select";
        let result = self
            .session
            .execute_unpaged(&self.st.version_select, (machine.as_str(), id.as_str()))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        rows.maybe_first_row::<VersionRow>()
            .map_err(|e| malformed(what, e))?
            .map(VersionRow::into_record)
            .transpose()
    }

    /// Newest first. Reads the machine's whole version partition and sorts it: machines have
    /// at most a few thousand versions, and the table has no time-ordered index.
    pub(super) async fn version_page(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        let limit = page.effective_limit();
        let before = page
            .position()?
            .map(|p| parse_version_position(&p).ok_or(StoreError::InvalidCursor))
            .transpose()?;
        let what = "versions_of_machine";
        let pager = self
            .session
            .execute_iter(self.st.versions_of_machine.clone(), (machine.as_str(),))
            .await
            .map_err(|e| from_pager(what, e))?;
        let mut stream = pager
            .rows_stream::<VersionRow>()
            .map_err(|e| malformed(what, e))?;
        let mut versions = Vec::new();
        while let Some(row) = stream.next().await {
            versions.push(row.map_err(|e| malformed(what, e))?.into_record()?);
        }
        versions.sort_by(|a, b| {
            (b.created_at_ms, b.id.as_str()).cmp(&(a.created_at_ms, a.id.as_str()))
        });
        if let Some((ms, id)) = before {
            versions.retain(|v| (v.created_at_ms, v.id.as_str()) < (ms, id.as_str()));
        }
        versions.truncate(limit + 1);
        Ok(page_from(versions, limit, version_position))
    }

    pub(super) async fn insert_upload(&self, u: &UploadRecord) -> Result<(), StoreError> {
        self.ensure_open()?;
        let values = (
            u.id.as_str(),
            u.machine.as_str(),
            u.gzip,
            u.created_at_ms,
            u.code_hash.as_deref(),
        );
        self.session
            .execute_unpaged(&self.st.upload_insert, values)
            .await
            .map_err(|e| from_execution("upload_insert", e))?;
        Ok(())
    }

    pub(super) async fn select_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let what = "upload_select";
        let result = self
            .session
            .execute_unpaged(&self.st.upload_select, (id,))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        rows.maybe_first_row::<UploadRow>()
            .map_err(|e| malformed(what, e))?
            .map(UploadRow::into_record)
            .transpose()
    }

    pub(super) async fn remove_upload(&self, id: &str) -> Result<(), StoreError> {
        self.ensure_open()?;
        self.session
            .execute_unpaged(&self.st.upload_delete, (id,))
            .await
            .map_err(|e| from_execution("upload_delete", e))?;
        Ok(())
    }

    pub(super) async fn insert_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        self.ensure_open()?;
        let values = (
            k.id.as_str(),
            k.name.as_str(),
            &k.scopes,
            k.secret.as_str(),
            k.created_at_ms,
        );
        self.session
            .execute_unpaged(&self.st.key_insert, values)
            .await
            .map_err(|e| from_execution("key_insert", e))?;
        Ok(())
    }

    pub(super) async fn select_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let what = "key_select";
        let result = self
            .session
            .execute_unpaged(&self.st.key_select, (id.as_str(),))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        rows.maybe_first_row::<KeyRow>()
            .map_err(|e| malformed(what, e))?
            .map(KeyRow::into_record)
            .transpose()
    }

    pub(super) async fn key_page(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError> {
        let limit = page.effective_limit();
        let fetch = cql_limit(limit + 1);
        let result = match cursor_text(page)? {
            None => {
                self.session
                    .execute_unpaged(&self.st.keys_first, (fetch,))
                    .await
            }
            Some(after) => {
                self.session
                    .execute_unpaged(&self.st.keys_after, (after, fetch))
                    .await
            }
        }
        .map_err(|e| from_execution("keys", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| malformed("keys", e))?;
        let keys = rows
            .rows::<KeyRow>()
            .map_err(|e| malformed("keys", e))?
            .map(|r| r.map_err(|e| malformed("keys", e))?.into_record())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_from(keys, limit, |k| {
            k.id.as_str().as_bytes().to_vec()
        }))
    }

    /// Reads, then deletes: a key put concurrently with its deletion may survive or not.
    pub(super) async fn remove_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        self.ensure_open()?;
        let existed = self.select_key(id).await?.is_some();
        if existed {
            self.session
                .execute_unpaged(&self.st.key_delete, (id.as_str(),))
                .await
                .map_err(|e| from_execution("key_delete", e))?;
        }
        Ok(existed)
    }

    pub(super) async fn select_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let what = "meta_select";
        let result = self
            .session
            .execute_unpaged(&self.st.meta_select, (name,))
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        Ok(rows
            .maybe_first_row::<(Option<Vec<u8>>,)>()
            .map_err(|e| malformed(what, e))?
            .and_then(|(v,)| v))
    }

    pub(super) async fn insert_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.ensure_open()?;
        self.session
            .execute_unpaged(&self.st.meta_insert, (name, value))
            .await
            .map_err(|e| from_execution("meta_insert", e))?;
        Ok(())
    }
}
