//! The file's layout: tables, key encodings and the value encoding.
//!
//! Every table maps bytes to bytes. Keys are built so that each listing is one range scan:
//! names are joined with `\0` (which no name or id may contain), numbers are big-endian so
//! byte order is numeric order. Values start with a one-byte record format, then JSON; bundles
//! and meta values are the format byte followed by the raw bytes. Instance values carry their
//! compare-and-set version and their wake time in a header between the format byte and the
//! JSON, so the writer compares versions and moves wake-up entries without parsing snapshots
//! (which may be hundreds of kilobytes).

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use crate::store::{InstanceRecord, InstanceStatus, StoreError, Wakeup};

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
/// The wake-up index: `<wake_at_ms, sortable>machine\0instance` → empty, one entry per
/// instance whose row has a wake time, written in the same transaction as the row.
pub(super) const WAKEUPS: Bytes = TableDefinition::new("wakeups");

/// Every table, so opening a store can create them all before any read needs one.
pub(super) const ALL_TABLES: [Bytes; 10] = [
    META,
    MACHINES,
    VERSIONS,
    VERSION_IDS,
    BUNDLES,
    UPLOADS,
    INSTANCES,
    TRANSITIONS,
    KEYS,
    WAKEUPS,
];

/// The meta entry holding the file's format version (a big-endian u32).
pub(super) const FORMAT_VERSION_KEY: &str = "statewire.store.format_version";
/// The layout this build writes and reads. A file with a higher number is refused; a file
/// with a lower one is upgraded when opened (see `EmbeddedStore::open`).
///
/// 1: the first layout. 2: adds [`WAKEUPS`] and instance values in [`INSTANCE_FORMAT`], whose
/// effect state a build that knows only 1 would silently drop, so it must refuse the file.
pub(super) const FORMAT_VERSION: u32 = 2;
/// First byte of every stored value except instances written by layout 2.
const RECORD_FORMAT: u8 = 1;
/// First byte of an instance value written by this build: version (8 bytes), then a wake
/// flag (1 byte) and wake time (8 bytes, big-endian), then JSON. Values of layout 1 start with
/// [`RECORD_FORMAT`] and have only the version; they have no wake time.
const INSTANCE_FORMAT: u8 = 2;

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

/// `<wake_at_ms as sortable bytes>machine\0instance`: the index orders by time, then by
/// machine and instance name (no name contains `\0`, which sorts before every name byte).
pub(super) fn wakeup_key(wake_at_ms: i64, key: &InstanceKey) -> Vec<u8> {
    wakeup_key_of(wake_at_ms, &instance_key(key))
}

/// [`wakeup_key`] from an already encoded [`instance_key`].
pub(super) fn wakeup_key_of(wake_at_ms: i64, instance_key: &[u8]) -> Vec<u8> {
    let mut out = sortable_i64(wake_at_ms).to_vec();
    out.extend_from_slice(instance_key);
    out
}

/// The first key of the index whose time is after `wake_at_ms`, or `None` when no time is.
pub(super) fn wakeups_after_time(wake_at_ms: i64) -> Option<Vec<u8>> {
    wake_at_ms
        .checked_add(1)
        .map(|next| sortable_i64(next).to_vec())
}

pub(super) fn decode_wakeup_key(bytes: &[u8]) -> Result<Wakeup, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("wake-up entry {bytes:?}"));
    let (time, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let wake_at_ms = (u64::from_be_bytes(*time) ^ (1 << 63)) as i64;
    let text = std::str::from_utf8(rest).map_err(|_| corrupt())?;
    let (machine, instance) = text.split_once('\0').ok_or_else(corrupt)?;
    let machine = MachineName::parse(machine).map_err(|_| corrupt())?;
    let instance = InstanceName::parse(instance).map_err(|_| corrupt())?;
    Ok(Wakeup {
        wake_at_ms,
        key: InstanceKey::new(machine, instance),
    })
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
    let mut out = vec![INSTANCE_FORMAT];
    out.extend_from_slice(&record.version.to_be_bytes());
    let wake = record.effects.wake_at_ms;
    out.push(u8::from(wake.is_some()));
    out.extend_from_slice(&wake.unwrap_or(0).to_be_bytes());
    serde_json::to_writer(&mut out, record)
        .map_err(|e| StoreError::Backend(format!("instance does not encode: {e}")))?;
    Ok(out)
}

/// What an instance value says about itself before its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InstanceHeader {
    /// The compare-and-set version.
    pub version: u64,
    /// The wake time, whose index entry belongs to this value.
    pub wake_at_ms: Option<i64>,
    /// Where the JSON starts.
    json_at: usize,
}

/// Reads the header of a stored instance value (either layout).
pub(super) fn instance_header(bytes: &[u8]) -> Result<InstanceHeader, StoreError> {
    let short = || StoreError::Corrupt("instance value is shorter than its header".into());
    let (format, rest) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt("empty value".to_owned()))?;
    let (version, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
    let version = u64::from_be_bytes(*version);
    match *format {
        RECORD_FORMAT => Ok(InstanceHeader {
            version,
            wake_at_ms: None,
            json_at: 9,
        }),
        INSTANCE_FORMAT => {
            let (flag, rest) = rest.split_first().ok_or_else(short)?;
            let (wake, _) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            let wake_at_ms = match flag {
                0 => None,
                1 => Some(i64::from_be_bytes(*wake)),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "instance value has wake flag {other}"
                    )))
                }
            };
            Ok(InstanceHeader {
                version,
                wake_at_ms,
                json_at: 18,
            })
        }
        other => Err(StoreError::Corrupt(format!(
            "instance value has record format {other}, this build reads \
             {RECORD_FORMAT} and {INSTANCE_FORMAT}"
        ))),
    }
}

pub(super) fn decode_instance(bytes: &[u8]) -> Result<InstanceRecord, StoreError> {
    let header = instance_header(bytes)?;
    let record: InstanceRecord = serde_json::from_slice(&bytes[header.json_at..])
        .map_err(|e| StoreError::Corrupt(format!("instance: {e}")))?;
    if record.version != header.version || record.effects.wake_at_ms != header.wake_at_ms {
        return Err(StoreError::Corrupt(format!(
            "instance header says version {} and wake {:?}, record says {} and {:?}",
            header.version, header.wake_at_ms, record.version, record.effects.wake_at_ms
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
    let header = instance_header(bytes)?;
    serde_json::from_slice(&bytes[header.json_at..])
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

    fn record(version: u64, wake_at_ms: Option<i64>) -> InstanceRecord {
        InstanceRecord {
            machine_version: MachineVersionId::parse("ver_a").unwrap(),
            desired_machine_version: None,
            status: InstanceStatus::Running,
            version,
            ts_ms: 1,
            snapshot: "{}".into(),
            state: serde_json::json!("idle"),
            context: serde_json::json!({}),
            tags: vec![],
            done: false,
            write_id: uuid::Uuid::from_u128(7),
            created_at_ms: 1,
            updated_at_ms: 1,
            effects: crate::store::EffectState {
                wake_at_ms,
                ..Default::default()
            },
        }
    }

    #[test]
    fn instance_headers_carry_version_and_wake_time() {
        for wake in [None, Some(-5), Some(0), Some(1_700_000_000_000)] {
            let r = record(42, wake);
            let bytes = encode_instance(&r).unwrap();
            let header = instance_header(&bytes).unwrap();
            assert_eq!((header.version, header.wake_at_ms), (42, wake));
            assert_eq!(decode_instance(&bytes).unwrap(), r);
        }
    }

    #[test]
    fn first_format_instance_values_decode_without_a_wake_time() {
        let r = record(3, None);
        let mut bytes = vec![RECORD_FORMAT];
        bytes.extend_from_slice(&3u64.to_be_bytes());
        bytes.extend_from_slice(&serde_json::to_vec(&r).unwrap());
        let header = instance_header(&bytes).unwrap();
        assert_eq!((header.version, header.wake_at_ms), (3, None));
        assert_eq!(decode_instance(&bytes).unwrap(), r);
        assert_eq!(decode_instance_summary(&bytes).unwrap().created_at_ms, 1);
    }

    #[test]
    fn a_header_that_disagrees_with_its_record_is_corrupt() {
        let mut bytes = encode_instance(&record(1, Some(10))).unwrap();
        bytes[9] = 0;
        assert!(matches!(
            decode_instance(&bytes),
            Err(StoreError::Corrupt(_))
        ));
        bytes[9] = 7;
        assert!(matches!(
            instance_header(&bytes),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            instance_header(&[2, 0, 0]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn wakeup_keys_order_by_time_then_name_and_decode_back() {
        let m = |s: &str| MachineName::parse(s).unwrap();
        let k = |machine: &str, instance: &str| {
            InstanceKey::new(m(machine), InstanceName::parse(instance).unwrap())
        };
        let entries = [
            (-10, k("b", "a")),
            (5, k("a", "z")),
            (5, k("ab", "a")),
            (5, k("b", "a")),
            (5, k("b", "ab")),
            (6, k("a", "a")),
        ];
        let keys: Vec<Vec<u8>> = entries.iter().map(|(t, k)| wakeup_key(*t, k)).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "byte order is (time, key) order"
        );
        for ((t, key), bytes) in entries.iter().zip(&keys) {
            let decoded = decode_wakeup_key(bytes).unwrap();
            assert_eq!((decoded.wake_at_ms, &decoded.key), (*t, key));
        }
        let after_5 = wakeups_after_time(5).unwrap();
        assert!(keys[4] < after_5 && after_5 <= keys[5]);
        assert_eq!(wakeups_after_time(i64::MAX), None);
    }

    #[test]
    fn values_with_an_unknown_record_format_are_corrupt() {
        assert!(matches!(decode_raw(&[2, 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_raw(&[]), Err(StoreError::Corrupt(_))));
        assert_eq!(decode_raw(&encode_raw(b"x")).unwrap(), b"x");
    }
}
