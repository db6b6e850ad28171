//! Reading the reply of a lightweight transaction.
//!
//! The reply is a one-row result whose `[applied]` column says whether the condition held.
//! Its other columns differ between servers: Apache Cassandra returns only `[applied]` on
//! success and the current values of the row on failure; ScyllaDB may return the row's
//! previous values either way. So columns are found by name in the result's column specs,
//! never by position or a fixed row type.

use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::value::{CqlValue, Row};

use super::errors::malformed;
use crate::store::StoreError;

/// Name of the column carrying a transaction's verdict.
pub(super) const APPLIED_COLUMN: &str = "[applied]";

/// What a lightweight transaction reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LwtReply {
    pub applied: bool,
    /// The row's `version` when the reply carries it (on failure: the version that made the
    /// condition fail; `None` when the row does not exist or the server left it out).
    pub version: Option<i64>,
}

/// Decodes the reply of the transaction named `what`.
pub(super) fn decode(what: &str, result: QueryResult) -> Result<LwtReply, StoreError> {
    let rows = result.into_rows_result().map_err(|e| malformed(what, e))?;
    decode_rows(what, &rows)
}

fn decode_rows(what: &str, rows: &QueryRowsResult) -> Result<LwtReply, StoreError> {
    let specs = rows.column_specs();
    let (applied_at, _) = specs
        .get_by_name(APPLIED_COLUMN)
        .ok_or_else(|| malformed(what, "no [applied] column"))?;
    let version_at = specs.get_by_name("version").map(|(i, _)| i);
    let row: Row = rows.first_row().map_err(|e| malformed(what, e))?;
    let cell = |i: usize| row.columns.get(i).and_then(Option::as_ref);
    let applied = match cell(applied_at) {
        Some(CqlValue::Boolean(b)) => *b,
        other => return Err(malformed(what, format!("[applied] is {other:?}"))),
    };
    let version = match version_at.and_then(cell) {
        Some(CqlValue::BigInt(v)) => Some(*v),
        None => None,
        Some(other) => return Err(malformed(what, format!("version is {other:?}"))),
    };
    Ok(LwtReply { applied, version })
}
