//! Transition history: one row per accepted event, in buckets of [`HISTORY_BUCKET_VERSIONS`]
//! consecutive versions per partition, newest first.
//!
//! The history row is appended after the instance transaction, with the same key on every
//! retry, so it is an idempotent write. A crash between the two loses that row (never the
//! snapshot); the gap shows as a missing version.

use std::time::Duration;

use futures_util::future::try_join_all;
use tracing::error;

use super::errors::{from_execution, malformed};
use super::instances::key_values;
use super::rows::{cql_limit, json_text, to_bigint, TransitionRow};
use super::ScyllaStore;
use crate::ids::InstanceKey;
use crate::store::{encode_cursor, Commit, Page, PageRequest, StoreError, TransitionRecord};

/// Versions per history partition. Part of the schema: changing it orphans existing history.
pub const HISTORY_BUCKET_VERSIONS: u64 = 1024;

/// How many history buckets one page request may visit before returning a short page with a
/// cursor (bounds the cost of walking long stretches without history).
const MAX_BUCKETS_PER_PAGE: usize = 64;

/// Attempts to append a history row before giving up on it.
const APPEND_ATTEMPTS: u32 = 3;

/// Partitions deleted at once when an instance is deleted.
const DELETE_CONCURRENCY: usize = 32;

pub(super) fn bucket_of(version: u64) -> u64 {
    version.saturating_sub(1) / HISTORY_BUCKET_VERSIONS
}

impl ScyllaStore {
    /// Appends the history row of an applied commit. The commit is durable whatever happens
    /// here, so a failure after the retries is logged, not returned: returning it would make
    /// the caller retry an event that was applied.
    /// `version` is the transition's version, already checked to fit a bigint.
    pub(super) async fn append_transition(&self, c: &Commit, t: &TransitionRecord, version: i64) {
        let (machine, instance) = key_values(&c.key);
        for attempt in 1..=APPEND_ATTEMPTS {
            let values = (
                machine,
                instance,
                c.next.created_at_ms,
                bucket_of(t.version) as i64,
                version,
                c.next.write_id,
                json_text(&t.event),
                json_text(&t.state),
                t.created_at_ms,
            );
            match self
                .session
                .execute_unpaged(&self.st.transition_insert, values)
                .await
            {
                Ok(_) => return,
                Err(e) if attempt == APPEND_ATTEMPTS => {
                    error!(instance = %c.key, version = t.version, error = %e, "history row lost after commit");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await,
            }
        }
    }

    /// The write id recorded in the history row of the commit's version, if that row exists.
    pub(super) async fn transition_write_id(
        &self,
        c: &Commit,
    ) -> Result<Option<uuid::Uuid>, StoreError> {
        let (machine, instance) = key_values(&c.key);
        let what = "transition_write_id";
        let result = self
            .session
            .execute_unpaged(
                &self.st.transition_write_id,
                (
                    machine,
                    instance,
                    c.next.created_at_ms,
                    bucket_of(c.next.version) as i64,
                    to_bigint("version", c.next.version)?,
                ),
            )
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        let row = rows
            .maybe_first_row::<(Option<uuid::Uuid>,)>()
            .map_err(|e| malformed(what, e))?;
        Ok(row.and_then(|(id,)| id))
    }

    /// History newest first. The cursor is the version of the last item returned.
    pub(super) async fn list_history(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError> {
        let limit = page.effective_limit();
        let below = match page.position()? {
            Some(bytes) => {
                let be: [u8; 8] = bytes.try_into().map_err(|_| StoreError::InvalidCursor)?;
                Some(u64::from_be_bytes(be))
            }
            None => None,
        };
        let Some(instance) = self.load_instance_at(key, false).await? else {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
            });
        };
        let mut below = below.unwrap_or(instance.version.saturating_add(1));
        let mut items: Vec<TransitionRecord> = Vec::new();
        let mut visited = 0;
        // One more than the page so the cursor is set only when another item exists.
        while below > 1 && items.len() <= limit {
            if visited == MAX_BUCKETS_PER_PAGE {
                // Stop early; the cursor resumes below the last bucket visited.
                let cursor = Some(encode_cursor(&below.to_be_bytes()));
                items.truncate(limit);
                return Ok(Page { items, cursor });
            }
            let bucket = bucket_of(below - 1);
            let want = limit + 1 - items.len();
            let found = self
                .history_bucket(key, instance.created_at_ms, bucket, below, want)
                .await?;
            visited += 1;
            items.extend(found);
            below = bucket * HISTORY_BUCKET_VERSIONS + 1;
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(&last.version.to_be_bytes())),
            _ => None,
        };
        Ok(Page { items, cursor })
    }

    async fn history_bucket(
        &self,
        key: &InstanceKey,
        created_at_ms: i64,
        bucket: u64,
        below: u64,
        want: usize,
    ) -> Result<Vec<TransitionRecord>, StoreError> {
        let (machine, instance) = key_values(key);
        let what = "transitions_below";
        let result = self
            .session
            .execute_unpaged(
                &self.st.transitions_below,
                (
                    machine,
                    instance,
                    created_at_ms,
                    bucket as i64,
                    to_bigint("version", below)?,
                    cql_limit(want),
                ),
            )
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        rows.rows::<TransitionRow>()
            .map_err(|e| malformed(what, e))?
            .map(|r| r.map_err(|e| malformed(what, e))?.into_record(key))
            .collect()
    }

    /// Deletes every history bucket an incarnation up to `version` can have used.
    pub(super) async fn delete_history(
        &self,
        key: &InstanceKey,
        created_at_ms: i64,
        version: u64,
    ) -> Result<(), StoreError> {
        let (machine, instance) = key_values(key);
        let buckets: Vec<u64> = (0..=bucket_of(version)).collect();
        for chunk in buckets.chunks(DELETE_CONCURRENCY) {
            try_join_all(chunk.iter().map(|b| {
                self.session.execute_unpaged(
                    &self.st.transitions_delete_bucket,
                    (machine, instance, created_at_ms, *b as i64),
                )
            }))
            .await
            .map_err(|e| from_execution("transitions_delete_bucket", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_consecutive_versions_from_one() {
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(HISTORY_BUCKET_VERSIONS), 0);
        assert_eq!(bucket_of(HISTORY_BUCKET_VERSIONS + 1), 1);
        assert_eq!(bucket_of(0), 0);
    }
}
