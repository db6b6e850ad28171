//! The file's layout: tables, key encodings and the value encoding.
//!
//! Every table maps bytes to bytes. Keys are built so that each listing is one range scan:
//! names are joined with `\0` (which no name or id may contain), numbers are big-endian so
//! byte order is numeric order. Values start with a one-byte record format, then JSON; bundles
//! and meta values are the format byte followed by the raw bytes. Instance values carry their
//! compare-and-set version as 8 big-endian bytes between the format byte and the JSON, so the
//! writer compares versions without parsing snapshots (which may be hundreds of kilobytes).

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::{InstanceKey, MachineName, MachineVersionId};
use crate::store::{InstanceRecord, InstanceStatus, StoreError};

type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Server-wide values by name, including [`FORMAT_VERSION_KEY`].
pub(super) const META: Bytes = TableDefinition::new("meta");
/// Machines by name.
pub(super) const MACHINES: Bytes = TableDefinition::new("machines");
/// Versions by `machine\0<created_at_ms, sortable>id`, so a machine's versions list in
/// creation order.
pub(super) const VERSIONS: Bytes = TableDefinition::new("versions");
/// `machine\0id` → the version's key in [`VERSIONS`].
pub(super) const VERSION_IDS: Bytes = TableDefinition::new("version_ids");
/// Module code by content hash.
pub(super) const BUNDLES: Bytes = TableDefinition::new("bundles");
/// Provisional uploads by id.
pub(super) const UPLOADS: Bytes = TableDefinition::new("uploads");
/// Instances by `machine\0instance`.
pub(super) const INSTANCES: Bytes = TableDefinition::new("instances");
/// History by `machine\0instance\0<version, big-endian u64>`.
pub(super) const TRANSITIONS: Bytes = TableDefinition::new("transitions");
/// Signing keys by id.
pub(super) const KEYS: Bytes = TableDefinition::new("keys");

/// Every table, so opening a store can create them all before any read needs one.
pub(super) const ALL_TABLES: [Bytes; 9] = [
    META,
    MACHINES,
    VERSIONS,
    VERSION_IDS,
    BUNDLES,
    UPLOADS,
    INSTANCES,
    TRANSITIONS,
    KEYS,
];

/// The meta entry holding the file's format version (a big-endian u32).
pub(super) const FORMAT_VERSION_KEY: &str = "statewire.store.format_version";
/// The layout this build writes and reads. A file with a higher number is refused.
pub(super) const FORMAT_VERSION: u32 = 1;
/// First byte of every stored value.
const RECORD_FORMAT: u8 = 1;

/// `machine\0`: the prefix of everything stored under one machine.
pub(super) fn machine_prefix(machine: &MachineName) -> Vec<u8> {
    joined(&[machine.as_str().as_bytes()])
}

/// `machine\0instance`.
pub(super) fn instance_key(key: &InstanceKey) -> Vec<u8> {
    let mut out = machine_prefix(&key.machine);
    out.extend_from_slice(key.instance.as_str().as_bytes());
    out
}

/// `machine\0instance\0`: the prefix of one instance's history.
pub(super) fn transition_prefix(key: &InstanceKey) -> Vec<u8> {
    let mut out = instance_key(key);
    out.push(0);
    out
}

pub(super) fn transition_key(key: &InstanceKey, version: u64) -> Vec<u8> {
    let mut out = transition_prefix(key);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// `machine\0<created_at_ms as sortable bytes>id`.
pub(super) fn version_key(
    machine: &MachineName,
    created_at_ms: i64,
    id: &MachineVersionId,
) -> Vec<u8> {
    let mut out = machine_prefix(machine);
    out.extend_from_slice(&sortable_i64(created_at_ms));
    out.extend_from_slice(id.as_str().as_bytes());
    out
}

/// `machine\0id`.
pub(super) fn version_id_key(machine: &MachineName, id: &MachineVersionId) -> Vec<u8> {
    let mut out = machine_prefix(machine);
    out.extend_from_slice(id.as_str().as_bytes());
    out
}

/// The first key after every key that starts with `prefix`. Every prefix built here ends in
/// `\0`, so bumping the last byte never overflows; an empty prefix has no end and gives an
/// empty vector, which callers treat as unbounded.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = last.saturating_add(1);
    }
    end
}

fn joined(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

/// Big-endian with the sign bit flipped, so negative numbers sort first.
fn sortable_i64(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn encode_record<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RECORD_FORMAT];
    serde_json::to_writer(&mut out, record)
        .map_err(|e| StoreError::Backend(format!("record does not encode: {e}")))?;
    Ok(out)
}

pub(super) fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let json = strip_format(bytes)?;
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("record: {e}")))
}

pub(super) fn encode_instance(record: &InstanceRecord) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RECORD_FORMAT];
    out.extend_from_slice(&record.version.to_be_bytes());
    serde_json::to_writer(&mut out, record)
        .map_err(|e| StoreError::Backend(format!("instance does not encode: {e}")))?;
    Ok(out)
}

/// The compare-and-set version of a stored instance, read from its header.
pub(super) fn instance_version(bytes: &[u8]) -> Result<u64, StoreError> {
    let rest = strip_format(bytes)?;
    let (be, _) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("instance value is shorter than its header".into()))?;
    Ok(u64::from_be_bytes(*be))
}

pub(super) fn decode_instance(bytes: &[u8]) -> Result<InstanceRecord, StoreError> {
    let version = instance_version(bytes)?;
    let record: InstanceRecord = serde_json::from_slice(&bytes[9..])
        .map_err(|e| StoreError::Corrupt(format!("instance: {e}")))?;
    if record.version != version {
        return Err(StoreError::Corrupt(format!(
            "instance header says version {version}, record says {}",
            record.version
        )));
    }
    Ok(record)
}

/// The fields of an instance that a listing shows; the rest of the record is skipped unread.
#[derive(serde::Deserialize)]
pub(super) struct SummaryFields {
    pub created_at_ms: i64,
    pub machine_version: MachineVersionId,
    pub status: InstanceStatus,
}

pub(super) fn decode_instance_summary(bytes: &[u8]) -> Result<SummaryFields, StoreError> {
    instance_version(bytes)?;
    serde_json::from_slice(&bytes[9..])
        .map_err(|e| StoreError::Corrupt(format!("instance summary: {e}")))
}

pub(super) fn encode_raw(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 1);
    out.push(RECORD_FORMAT);
    out.extend_from_slice(raw);
    out
}

pub(super) fn decode_raw(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    strip_format(bytes).map(<[u8]>::to_vec)
}

fn strip_format(bytes: &[u8]) -> Result<&[u8], StoreError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => Ok(rest),
        Some((other, _)) => Err(StoreError::Corrupt(format!(
            "value has record format {other}, this build reads {RECORD_FORMAT}"
        ))),
        None => Err(StoreError::Corrupt("empty value".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_order_like_numbers() {
        let ns = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in ns.windows(2) {
            assert!(
                sortable_i64(w[0]) < sortable_i64(w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn one_instance_history_is_one_contiguous_range() {
        let m = MachineName::parse("m").unwrap();
        let a = InstanceKey::new(m.clone(), crate::ids::InstanceName::parse("a").unwrap());
        let ab = InstanceKey::new(m, crate::ids::InstanceName::parse("ab").unwrap());
        let prefix = transition_prefix(&a);
        let end = prefix_end(&prefix);
        for v in [0, 1, 255, 256, u64::MAX] {
            let k = transition_key(&a, v);
            assert!(k >= prefix && k < end);
            let other = transition_key(&ab, v);
            assert!(
                !(other >= prefix && other < end),
                "ab's history is outside a's range"
            );
        }
        assert!(transition_key(&a, 255) < transition_key(&a, 256));
    }

    #[test]
    fn values_with_an_unknown_record_format_are_corrupt() {
        assert!(matches!(decode_raw(&[2, 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_raw(&[]), Err(StoreError::Corrupt(_))));
        assert_eq!(decode_raw(&encode_raw(b"x")).unwrap(), b"x");
    }
}
