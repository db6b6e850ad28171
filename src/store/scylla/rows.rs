//! Conversions between the store's records and CQL rows.
//!
//! JSON documents travel as text; versions and times as bigint. A row that cannot become a
//! record is reported as [`StoreError::Corrupt`], naming the table and key.

use scylla::DeserializeRow;
use serde_json::Value;

use crate::ids::{InstanceKey, KeyId, MachineName, MachineVersionId};
use crate::store::{
    EffectState, InstanceRecord, InstanceStatus, KeyRecord, MachineRecord, PageRequest, StoreError,
    UploadRecord, VersionRecord,
};

/// A CQL `LIMIT` for `n` items (saturating; pages never approach `i32::MAX`).
pub(super) fn cql_limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The position inside a cursor that must be UTF-8 text (a name), or `None` for the first
/// page.
pub(super) fn cursor_text(page: &PageRequest) -> Result<Option<String>, StoreError> {
    page.position()?
        .map(|p| String::from_utf8(p).map_err(|_| StoreError::InvalidCursor))
        .transpose()
}

/// A stored version as CQL bigint.
pub(super) fn to_bigint(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} exceeds bigint")))
}

fn from_bigint(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative ({v})")))
}

pub(super) fn status_text(s: InstanceStatus) -> &'static str {
    match s {
        InstanceStatus::Running => "running",
        InstanceStatus::Paused => "paused",
    }
}

fn parse_status(s: &str) -> Option<InstanceStatus> {
    match s {
        "running" => Some(InstanceStatus::Running),
        "paused" => Some(InstanceStatus::Paused),
        _ => None,
    }
}

pub(super) fn json_text(v: &Value) -> String {
    v.to_string()
}

/// The `effects` column: JSON, or null when there is no effect state.
pub(super) fn effects_text(e: &EffectState) -> Result<Option<String>, StoreError> {
    if e.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(e)
        .map(Some)
        .map_err(|err| StoreError::Backend(format!("effect state does not encode: {err}")))
}

fn parse_effects(what: &str, text: Option<&str>) -> Result<EffectState, StoreError> {
    match text {
        None => Ok(EffectState::default()),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| StoreError::Corrupt(format!("{what}: effects: {e}"))),
    }
}

fn parse_json(what: &str, text: Option<&str>) -> Result<Value, StoreError> {
    match text {
        None => Ok(Value::Null),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| StoreError::Corrupt(format!("{what} is not JSON: {e}"))),
    }
}

fn version_id(what: &str, s: &str) -> Result<MachineVersionId, StoreError> {
    MachineVersionId::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad machine version id {s:?}")))
}

/// One row of `instances`, as selected by `instance_select`.
#[derive(DeserializeRow)]
pub(super) struct InstanceRow {
    machine_version: Option<String>,
    desired_machine_version: Option<String>,
    status: Option<String>,
    version: Option<i64>,
    ts_ms: Option<i64>,
    snapshot: Option<String>,
    state: Option<String>,
    context: Option<String>,
    tags: Option<Vec<String>>,
    done: Option<bool>,
    write_id: Option<uuid::Uuid>,
    created_at_ms: Option<i64>,
    updated_at_ms: Option<i64>,
    /// Null in rows written before effect state existed, and when there is none.
    effects: Option<String>,
}

impl InstanceRow {
    pub(super) fn into_record(self, key: &InstanceKey) -> Result<InstanceRecord, StoreError> {
        let what = format!("instance {key}");
        let missing = |column: &str| StoreError::Corrupt(format!("{what}: {column} is null"));
        let status = self.status.ok_or_else(|| missing("status"))?;
        Ok(InstanceRecord {
            machine_version: version_id(
                &what,
                &self
                    .machine_version
                    .ok_or_else(|| missing("machine_version"))?,
            )?,
            desired_machine_version: self
                .desired_machine_version
                .map(|v| version_id(&what, &v))
                .transpose()?,
            status: parse_status(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad status {status:?}")))?,
            version: from_bigint(&what, self.version.ok_or_else(|| missing("version"))?)?,
            ts_ms: self.ts_ms.ok_or_else(|| missing("ts_ms"))?,
            snapshot: self.snapshot.ok_or_else(|| missing("snapshot"))?,
            state: parse_json(&what, self.state.as_deref())?,
            context: parse_json(&what, self.context.as_deref())?,
            tags: self.tags.unwrap_or_default(),
            done: self.done.unwrap_or(false),
            write_id: self.write_id.ok_or_else(|| missing("write_id"))?,
            created_at_ms: self.created_at_ms.ok_or_else(|| missing("created_at_ms"))?,
            updated_at_ms: self.updated_at_ms.ok_or_else(|| missing("updated_at_ms"))?,
            effects: parse_effects(&what, self.effects.as_deref())?,
        })
    }
}

/// One row of `machines`.
#[derive(DeserializeRow)]
pub(super) struct MachineRow {
    name: String,
    created_at_ms: Option<i64>,
    indexes: Option<Vec<String>>,
    current_version: Option<String>,
}

impl MachineRow {
    pub(super) fn into_record(self) -> Result<MachineRecord, StoreError> {
        let what = format!("machine {}", self.name);
        Ok(MachineRecord {
            name: MachineName::parse(self.name.as_str())
                .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?,
            created_at_ms: self.created_at_ms.unwrap_or(0),
            indexes: self.indexes.unwrap_or_default(),
            current_version: self
                .current_version
                .map(|v| version_id(&what, &v))
                .transpose()?,
        })
    }
}

/// One row of `versions`.
#[derive(DeserializeRow)]
pub(super) struct VersionRow {
    machine: String,
    id: String,
    created_at_ms: Option<i64>,
    client_info: Option<String>,
    code_hash: Option<String>,
    index_selectors: Option<String>,
}

impl VersionRow {
    pub(super) fn into_record(self) -> Result<VersionRecord, StoreError> {
        let what = format!("version {}/{}", self.machine, self.id);
        Ok(VersionRecord {
            machine: MachineName::parse(self.machine.as_str())
                .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?,
            id: version_id(&what, &self.id)?,
            created_at_ms: self.created_at_ms.unwrap_or(0),
            client_info: self.client_info.unwrap_or_default(),
            code_hash: self
                .code_hash
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: code_hash is null")))?,
            index_selectors: parse_json(&what, self.index_selectors.as_deref())?,
        })
    }
}

/// One row of `uploads`.
#[derive(DeserializeRow)]
pub(super) struct UploadRow {
    id: String,
    machine: Option<String>,
    gzip: Option<bool>,
    created_at_ms: Option<i64>,
    code_hash: Option<String>,
}

impl UploadRow {
    pub(super) fn into_record(self) -> Result<UploadRecord, StoreError> {
        let what = format!("upload {}", self.id);
        let machine = self
            .machine
            .ok_or_else(|| StoreError::Corrupt(format!("{what}: machine is null")))?;
        Ok(UploadRecord {
            machine: MachineName::parse(machine)
                .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?,
            id: self.id,
            gzip: self.gzip.unwrap_or(false),
            created_at_ms: self.created_at_ms.unwrap_or(0),
            code_hash: self.code_hash,
        })
    }
}

/// One row of `signing_keys`.
#[derive(DeserializeRow)]
pub(super) struct KeyRow {
    id: String,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    secret: Option<String>,
    created_at_ms: Option<i64>,
}

impl KeyRow {
    pub(super) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let what = format!("key {}", self.id);
        Ok(KeyRecord {
            id: KeyId::parse(&self.id)
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: bad key id")))?,
            name: self.name.unwrap_or_default(),
            scopes: self.scopes.unwrap_or_default(),
            secret: self
                .secret
                .ok_or_else(|| StoreError::Corrupt(format!("{what}: secret is null")))?,
            created_at_ms: self.created_at_ms.unwrap_or(0),
        })
    }
}

/// One row of `transitions`, as selected by `transitions_below`.
#[derive(DeserializeRow)]
pub(super) struct TransitionRow {
    pub version: i64,
    event: Option<String>,
    state: Option<String>,
    created_at_ms: Option<i64>,
}

impl TransitionRow {
    pub(super) fn into_record(
        self,
        key: &InstanceKey,
    ) -> Result<crate::store::TransitionRecord, StoreError> {
        let what = format!("transition {key}@{}", self.version);
        Ok(crate::store::TransitionRecord {
            version: from_bigint(&what, self.version)?,
            created_at_ms: self.created_at_ms.unwrap_or(0),
            event: parse_json(&what, self.event.as_deref())?,
            state: parse_json(&what, self.state.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode_cursor;

    #[test]
    fn text_cursors_round_trip_and_garbage_is_refused() {
        let page = PageRequest {
            cursor: Some(encode_cursor(b"toggle-7")),
            limit: 0,
        };
        assert_eq!(cursor_text(&page).unwrap().as_deref(), Some("toggle-7"));
        let bad = PageRequest {
            cursor: Some(encode_cursor(&[0xff, 0xfe])),
            limit: 5,
        };
        assert!(matches!(cursor_text(&bad), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn versions_beyond_bigint_are_refused() {
        assert!(to_bigint("version", u64::MAX).is_err());
        assert_eq!(to_bigint("version", 7).unwrap(), 7);
        assert!(from_bigint("version", -1).is_err());
    }
}
