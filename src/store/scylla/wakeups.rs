//! The wake-up index on ScyllaDB: the `wakeups` table, partitioned by shard and minute.
//!
//! A commit whose record has a wake time first writes the entry `(wake, key)` as a plain,
//! idempotent insert, then runs its transaction. So an entry exists before any row can carry
//! its wake time, whatever fails afterwards, and an instance whose row has a wake time is
//! never missing from the index. Entries are never deleted: each one expires by TTL
//! [`WAKEUP_RETENTION_MS`] after its minute has passed. The index therefore also holds stale
//! entries (a wake time the row has since moved away from, a transaction that did not apply, a
//! deleted instance); whoever acts on an entry re-reads the row.
//!
//! A wake time already in the past when written is indexed at the time of writing instead, so
//! that a scan, which looks back only [`WAKEUP_LOOKBACK_MS`], still finds it.
//!
//! This process remembers the entries it wrote (up to [`INTENT_CACHE_ENTRIES`]) and skips the
//! insert when an event leaves the wake time unchanged, so the extra write is paid once per
//! change of wake time, not once per event.

use std::collections::HashMap;

use futures_util::future::try_join_all;
use parking_lot::Mutex;

use super::errors::{from_execution, malformed};
use super::rows::cql_limit;
use super::ScyllaStore;
use crate::ids::{InstanceKey, InstanceName, MachineName};
use crate::store::{StoreError, Wakeup};

/// Partitions per minute. Part of the schema: entries written under another count are not
/// found by scans.
pub const WAKEUP_SHARDS: i32 = 8;
/// Width of one partition's time range.
pub const WAKEUP_BUCKET_MS: i64 = 60_000;
/// How far before `min(until, now)` a scan without a starting point looks.
pub const WAKEUP_LOOKBACK_MS: i64 = 10 * 60_000;
/// How long an entry outlives the end of its minute (its TTL beyond it); also how far back a
/// scan that starts after an old entry may look.
pub const WAKEUP_RETENTION_MS: i64 = 24 * 3_600_000;
/// How far beyond now a scan looks at most; later entries are returned by later scans.
pub const WAKEUP_MAX_AHEAD_MS: i64 = 60 * 60_000;
/// Entries this process remembers having written. When full it forgets them all; a
/// forgotten entry costs one more insert, never a missing entry.
pub const INTENT_CACHE_ENTRIES: usize = 65_536;

/// Minutes whose partitions are read concurrently before checking whether `limit` is reached.
const SCAN_CHUNK_BUCKETS: i64 = 4;
/// The longest TTL a server accepts (20 years); an entry further away is written without one.
const MAX_TTL_SECONDS: i64 = 630_720_000;

/// The shard of an instance: FNV-1a (64-bit) of `machine\0instance`, modulo the shard count.
/// Stable across builds and platforms, because it is part of where entries are stored.
pub fn wakeup_shard(key: &InstanceKey) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = key.machine.as_str().bytes();
    let bytes = bytes.chain([0]).chain(key.instance.as_str().bytes());
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % WAKEUP_SHARDS as u64) as i32
}

/// The minute (partition) of a time; floor division, so negative times work too.
pub fn wakeup_bucket(ms: i64) -> i64 {
    ms.div_euclid(WAKEUP_BUCKET_MS)
}

/// The time an entry is stored under: the wake time, or now if that has passed.
pub fn indexed_time(wake_at_ms: i64, now_ms: i64) -> i64 {
    wake_at_ms.max(now_ms)
}

/// The TTL of an entry stored under `indexed_at_ms`: until [`WAKEUP_RETENTION_MS`] after its
/// minute ends, at least one second; 0 (no TTL) beyond what a server accepts.
pub fn ttl_seconds(indexed_at_ms: i64, now_ms: i64) -> i32 {
    let bucket_end_ms = (wakeup_bucket(indexed_at_ms) + 1).saturating_mul(WAKEUP_BUCKET_MS);
    let live_ms = bucket_end_ms
        .saturating_add(WAKEUP_RETENTION_MS)
        .saturating_sub(now_ms);
    let seconds = live_ms.saturating_add(999) / 1000;
    if seconds > MAX_TTL_SECONDS {
        0
    } else {
        seconds.max(1) as i32
    }
}

/// The times a scan reads, inclusive, and whether its first millisecond is the one of
/// `after` (so entries there are read only past `after`'s key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ScanWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    pub resumes_after_key: bool,
}

/// Where a scan for `wakeups_after(after, until_ms, …)` at `now_ms` looks: from `after`
/// (no further back than the retention), or from the lookback before `min(until, now)`; up
/// to `until_ms`, no further than [`WAKEUP_MAX_AHEAD_MS`] beyond now.
pub(super) fn scan_window(
    after: Option<&Wakeup>,
    until_ms: i64,
    now_ms: i64,
) -> Option<ScanWindow> {
    let end_ms = until_ms.min(now_ms.saturating_add(WAKEUP_MAX_AHEAD_MS));
    let (start_ms, resumes_after_key) = match after {
        Some(a) => {
            let oldest = now_ms.saturating_sub(WAKEUP_RETENTION_MS);
            (a.wake_at_ms.max(oldest), a.wake_at_ms >= oldest)
        }
        None => (
            until_ms.min(now_ms).saturating_sub(WAKEUP_LOOKBACK_MS),
            false,
        ),
    };
    (start_ms <= end_ms).then_some(ScanWindow {
        start_ms,
        end_ms,
        resumes_after_key,
    })
}

pub(super) use crate::clock::now_ms;

/// The entries this process wrote: instance → (wake time, time it was stored under).
#[derive(Default)]
pub(super) struct IntentCache {
    written: Mutex<HashMap<InstanceKey, (i64, i64)>>,
}

impl IntentCache {
    /// True when an entry for this wake time was written recently enough that scans will
    /// keep seeing it for at least half the lookback.
    fn covers(&self, key: &InstanceKey, wake_at_ms: i64, now_ms: i64) -> bool {
        let written = self.written.lock();
        written.get(key).is_some_and(|&(wake, indexed_at)| {
            wake == wake_at_ms && now_ms <= indexed_at.saturating_add(WAKEUP_LOOKBACK_MS / 2)
        })
    }

    fn remember(&self, key: &InstanceKey, wake_at_ms: i64, indexed_at_ms: i64) {
        let mut written = self.written.lock();
        if written.len() >= INTENT_CACHE_ENTRIES && !written.contains_key(key) {
            written.clear();
        }
        written.insert(key.clone(), (wake_at_ms, indexed_at_ms));
    }

    pub(super) fn forget(&self, key: &InstanceKey) {
        self.written.lock().remove(key);
    }
}

/// A partition read: which statement, and the position after which it starts.
enum Slice {
    /// Entries of the partition with `from <= wake <= to`.
    Between { from_ms: i64, to_ms: i64 },
    /// Entries at `after`'s time, after its key.
    AtTimeAfterKey,
}

impl ScyllaStore {
    /// Writes the entry for `wake_at_ms` (the wake time of the record being committed), unless
    /// this process already wrote one that scans still see. Runs before the transaction.
    pub(super) async fn write_wakeup_intent(
        &self,
        key: &InstanceKey,
        wake_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let Some(wake_at_ms) = wake_at_ms else {
            return Ok(());
        };
        let now = now_ms();
        if self.intents.covers(key, wake_at_ms, now) {
            return Ok(());
        }
        let indexed_at = indexed_time(wake_at_ms, now);
        let values = (
            wakeup_shard(key),
            wakeup_bucket(indexed_at),
            indexed_at,
            key.machine.as_str(),
            key.instance.as_str(),
            ttl_seconds(indexed_at, now),
        );
        self.session
            .execute_unpaged(&self.st.wakeup_insert, values)
            .await
            .map_err(|e| from_execution("wakeup_insert", e))?;
        self.intents.remember(key, wake_at_ms, indexed_at);
        Ok(())
    }

    /// The scan behind `wakeups_after`: the window's minutes in order, a few at a time, every
    /// shard of them at once, until `limit` entries are found or the window ends.
    pub(super) async fn scan_wakeups(
        &self,
        after: Option<&Wakeup>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let Some(window) = scan_window(after, until_ms, now_ms()) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let resume = after.filter(|_| window.resumes_after_key);
        let (first, last) = (wakeup_bucket(window.start_ms), wakeup_bucket(window.end_ms));
        let mut found: Vec<Wakeup> = Vec::new();
        let mut bucket = first;
        while bucket <= last && found.len() < limit {
            let chunk_end = bucket.saturating_add(SCAN_CHUNK_BUCKETS - 1).min(last);
            let reads = (bucket..=chunk_end).flat_map(|b| {
                (0..WAKEUP_SHARDS)
                    .map(move |shard| self.read_partition(shard, b, window, resume, limit))
            });
            for rows in try_join_all(reads).await? {
                found.extend(rows);
            }
            bucket = chunk_end + 1;
        }
        found.sort();
        found.dedup();
        found.truncate(limit);
        Ok(found)
    }

    /// One partition's entries inside the window (and past `resume`), in order, at most
    /// `limit`.
    async fn read_partition(
        &self,
        shard: i32,
        bucket: i64,
        window: ScanWindow,
        resume: Option<&Wakeup>,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let bucket_start = bucket.saturating_mul(WAKEUP_BUCKET_MS);
        let bucket_end = bucket_start.saturating_add(WAKEUP_BUCKET_MS - 1);
        let from_ms = window.start_ms.max(bucket_start);
        let to_ms = window.end_ms.min(bucket_end);
        let mut slices = Vec::new();
        match resume {
            Some(a) if a.wake_at_ms == from_ms => {
                slices.push(Slice::AtTimeAfterKey);
                if let Some(next) = from_ms.checked_add(1).filter(|n| *n <= to_ms) {
                    slices.push(Slice::Between {
                        from_ms: next,
                        to_ms,
                    });
                }
            }
            _ => slices.push(Slice::Between { from_ms, to_ms }),
        }
        let mut out = Vec::new();
        for slice in slices {
            let want = limit - out.len();
            match slice {
                Slice::Between { from_ms, to_ms } => {
                    let values = (shard, bucket, from_ms, to_ms, cql_limit(want));
                    let rows = self
                        .wakeup_rows("wakeups_between", &self.st.wakeups_between, values)
                        .await?;
                    out.extend(rows);
                }
                Slice::AtTimeAfterKey => {
                    let Some(a) = resume else { continue };
                    let (machine, instance) = (a.key.machine.as_str(), a.key.instance.as_str());
                    let values = (
                        shard,
                        bucket,
                        a.wake_at_ms,
                        machine,
                        instance,
                        cql_limit(want),
                    );
                    let same_machine = self
                        .wakeup_rows(
                            "wakeups_after_instance",
                            &self.st.wakeups_after_instance,
                            values,
                        )
                        .await?;
                    out.extend(same_machine);
                    let want = limit - out.len();
                    if want > 0 {
                        let values = (shard, bucket, a.wake_at_ms, machine, cql_limit(want));
                        let later_machines = self
                            .wakeup_rows(
                                "wakeups_after_machine",
                                &self.st.wakeups_after_machine,
                                values,
                            )
                            .await?;
                        out.extend(later_machines);
                    }
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn wakeup_rows(
        &self,
        what: &str,
        statement: &scylla::statement::prepared::PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| from_execution(what, e))?;
        let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
        rows.rows::<(i64, String, String)>()
            .map_err(|e| malformed(what, e))?
            .map(|row| {
                let (wake_at_ms, machine, instance) = row.map_err(|e| malformed(what, e))?;
                let corrupt = |e| StoreError::Corrupt(format!("{what}: {e}"));
                let key = InstanceKey::new(
                    MachineName::parse(machine).map_err(corrupt)?,
                    InstanceName::parse(instance).map_err(corrupt)?,
                );
                Ok(Wakeup { wake_at_ms, key })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(machine: &str, instance: &str) -> InstanceKey {
        InstanceKey::new(
            MachineName::parse(machine).unwrap(),
            InstanceName::parse(instance).unwrap(),
        )
    }

    #[test]
    fn shards_are_pinned_and_spread() {
        // Fixed values: a change here moves every stored entry to another partition.
        let pinned: Vec<i32> = ["a", "b", "c", "d"]
            .iter()
            .map(|i| wakeup_shard(&key("toggle", i)))
            .collect();
        assert_eq!(pinned, [2, 7, 4, 1]);
        assert_eq!(wakeup_shard(&key("m", "i")), 3);
        let mut used = [0usize; WAKEUP_SHARDS as usize];
        for i in 0..800 {
            used[wakeup_shard(&key("m", &format!("i{i}"))) as usize] += 1;
        }
        assert!(used.iter().all(|n| *n > 50), "{used:?}");
    }

    #[test]
    fn buckets_floor_to_the_minute() {
        assert_eq!(wakeup_bucket(0), 0);
        assert_eq!(wakeup_bucket(59_999), 0);
        assert_eq!(wakeup_bucket(60_000), 1);
        assert_eq!(wakeup_bucket(-1), -1);
    }

    #[test]
    fn past_wake_times_are_indexed_now() {
        assert_eq!(indexed_time(5_000, 1_000), 5_000);
        assert_eq!(indexed_time(1_000, 5_000), 5_000);
    }

    #[test]
    fn entries_live_until_the_retention_after_their_minute() {
        let now = 10 * WAKEUP_BUCKET_MS + 30_000;
        // Due this minute: 30 s left of it, then the retention.
        let ttl = ttl_seconds(now, now);
        assert_eq!(ttl as i64, 30 + WAKEUP_RETENTION_MS / 1000);
        // Due in an hour: that much longer.
        let later = ttl_seconds(now + 3_600_000, now);
        assert_eq!(later as i64, ttl as i64 + 3_600);
        assert_eq!(ttl_seconds(i64::MAX / 2, now), 0, "too far for a TTL");
        assert!(ttl_seconds(0, now) >= 1);
    }

    fn wakeup(wake_at_ms: i64) -> Wakeup {
        Wakeup {
            wake_at_ms,
            key: key("m", "i"),
        }
    }

    #[test]
    fn a_scan_without_a_start_looks_back_from_now_or_until() {
        let now = 100 * WAKEUP_BUCKET_MS;
        let w = scan_window(None, now + 5_000, now).unwrap();
        assert_eq!(w.start_ms, now - WAKEUP_LOOKBACK_MS);
        assert_eq!(w.end_ms, now + 5_000);
        let past = scan_window(None, now - 50_000, now).unwrap();
        assert_eq!(past.start_ms, now - 50_000 - WAKEUP_LOOKBACK_MS);
        let far = scan_window(None, i64::MAX, now).unwrap();
        assert_eq!(
            far.end_ms,
            now + WAKEUP_MAX_AHEAD_MS,
            "never beyond the horizon"
        );
        assert!(!far.resumes_after_key);
    }

    #[test]
    fn a_scan_after_an_entry_starts_at_it_within_the_retention() {
        let now = 10_000 * WAKEUP_BUCKET_MS;
        let w = scan_window(Some(&wakeup(now - 5_000)), now, now).unwrap();
        assert_eq!((w.start_ms, w.resumes_after_key), (now - 5_000, true));
        let old = scan_window(Some(&wakeup(now - 2 * WAKEUP_RETENTION_MS)), now, now).unwrap();
        assert_eq!(old.start_ms, now - WAKEUP_RETENTION_MS);
        assert!(
            !old.resumes_after_key,
            "the entry is older than anything kept"
        );
        assert!(scan_window(Some(&wakeup(now + 10)), now, now).is_none());
    }

    #[test]
    fn the_cache_covers_an_unchanged_wake_for_half_the_lookback() {
        let cache = IntentCache::default();
        let k = key("m", "i");
        assert!(!cache.covers(&k, 500, 0));
        cache.remember(&k, 500, 1_000);
        assert!(cache.covers(&k, 500, 1_000 + WAKEUP_LOOKBACK_MS / 2));
        assert!(!cache.covers(&k, 500, 1_001 + WAKEUP_LOOKBACK_MS / 2));
        assert!(!cache.covers(&k, 600, 1_000), "another wake time");
        cache.forget(&k);
        assert!(!cache.covers(&k, 500, 1_000));
    }

    #[test]
    fn a_full_cache_forgets_and_keeps_working() {
        let cache = IntentCache::default();
        for i in 0..INTENT_CACHE_ENTRIES {
            cache.remember(&key("m", &format!("i{i}")), 1, 1);
        }
        let newcomer = key("n", "x");
        cache.remember(&newcomer, 2, 2);
        assert!(cache.covers(&newcomer, 2, 2));
        assert!(!cache.covers(&key("m", "i0"), 1, 1));
        assert_eq!(cache.written.lock().len(), 1);
    }
}
