//! Reads: each one is its own redb read transaction (a consistent snapshot of the last commit),
//! independent of the writer thread.

use std::ops::Bound;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::backend;
use super::layout::{self, decode_raw, decode_record, prefix_end};
use crate::store::{encode_cursor, Page, PageRequest, StoreError, Wakeup};

type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Which end of a listing comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    Ascending,
    Descending,
}

pub(super) fn get_record<T: DeserializeOwned>(
    db: &Database,
    table: Bytes,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    get_with(db, table, key, decode_record)
}

/// The value under `key`, decoded by `decode`.
pub(super) fn get_with<T>(
    db: &Database,
    table: Bytes,
    key: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let table = txn.open_table(table).map_err(backend("open table"))?;
    let value = table.get(key).map_err(backend("read"))?;
    value.map(|v| decode(v.value())).transpose()
}

pub(super) fn get_raw(
    db: &Database,
    table: Bytes,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    get_with(db, table, key, decode_raw)
}

/// The record of a version, found through its id.
pub(super) fn get_indirect<T: DeserializeOwned>(
    db: &Database,
    index: Bytes,
    table: Bytes,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let index = txn.open_table(index).map_err(backend("open table"))?;
    let Some(target) = index.get(key).map_err(backend("read"))? else {
        return Ok(None);
    };
    let table = txn.open_table(table).map_err(backend("open table"))?;
    let value = table.get(target.value()).map_err(backend("read"))?;
    value.map(|v| decode_record(v.value())).transpose()
}

/// True when some key starts with `prefix`.
pub(super) fn any_with_prefix(
    db: &Database,
    table: Bytes,
    prefix: &[u8],
) -> Result<bool, StoreError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let table = txn.open_table(table).map_err(backend("open table"))?;
    let end = prefix_end(prefix);
    let found = table
        .range(prefix..end.as_slice())
        .map_err(backend("range"))?
        .next()
        .is_some();
    Ok(found)
}

/// One page of the keys starting with `prefix`, in `order`, after the page's cursor.
///
/// The cursor is the part of the last returned key after `prefix`. `item` turns that part and
/// the value into a listing row.
pub(super) fn page<T>(
    db: &Database,
    table: Bytes,
    prefix: &[u8],
    order: Order,
    request: &PageRequest,
    mut item: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let limit = request.effective_limit();
    let after = request.position()?.map(|suffix| {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&suffix);
        key
    });
    let end = prefix_end(prefix);
    let upper = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end.as_slice())
    };
    let bounds = match (&after, order) {
        (None, _) => (Bound::Included(prefix), upper),
        (Some(after), Order::Ascending) => (Bound::Excluded(after.as_slice()), upper),
        (Some(after), Order::Descending) => {
            (Bound::Included(prefix), Bound::Excluded(after.as_slice()))
        }
    };
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let table = txn.open_table(table).map_err(backend("open table"))?;
    let range = table.range(bounds).map_err(backend("range"))?;
    let rows: Box<dyn Iterator<Item = _>> = match order {
        Order::Ascending => Box::new(range),
        Order::Descending => Box::new(range.rev()),
    };

    let mut items = Vec::new();
    let mut last_suffix = Vec::new();
    let mut more = false;
    for row in rows {
        let (k, v) = row.map_err(backend("range"))?;
        let Some(suffix) = k.value().strip_prefix(prefix) else {
            continue;
        };
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(item(suffix, v.value())?);
        last_suffix = suffix.to_vec();
    }
    let cursor = more.then(|| encode_cursor(&last_suffix));
    Ok(Page { items, cursor })
}

/// [`page`] of records decoded as they are stored.
pub(super) fn page_records<T: DeserializeOwned>(
    db: &Database,
    table: Bytes,
    prefix: &[u8],
    order: Order,
    request: &PageRequest,
) -> Result<Page<T>, StoreError> {
    page(db, table, prefix, order, request, |_, v| decode_record(v))
}

/// Up to `limit` index entries after the key `after` (exclusive) whose time is at most
/// `until_ms`, in key order (time, then name).
pub(super) fn wakeups(
    db: &Database,
    after: Option<&[u8]>,
    until_ms: i64,
    limit: usize,
) -> Result<Vec<Wakeup>, StoreError> {
    let end = layout::wakeups_after_time(until_ms);
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    if let (Bound::Excluded(a), Bound::Excluded(e)) = (lower, upper) {
        if a >= e {
            return Ok(Vec::new());
        }
    }
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let table = txn
        .open_table(layout::WAKEUPS)
        .map_err(backend("open table"))?;
    let range = table.range((lower, upper)).map_err(backend("range"))?;
    let mut out = Vec::new();
    for row in range.take(limit) {
        let (k, _) = row.map_err(backend("range"))?;
        out.push(layout::decode_wakeup_key(k.value())?);
    }
    Ok(out)
}

/// The stored format version, if the file has one.
pub(super) fn format_version(db: &Database) -> Result<Option<u32>, StoreError> {
    let Some(raw) = get_raw(db, layout::META, layout::FORMAT_VERSION_KEY.as_bytes())? else {
        return Ok(None);
    };
    let be: [u8; 4] = raw
        .try_into()
        .map_err(|_| StoreError::Corrupt("format version is not 4 bytes".to_owned()))?;
    Ok(Some(u32::from_be_bytes(be)))
}
