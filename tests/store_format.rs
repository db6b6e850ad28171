//! The embedded store's file format: the version stamp, refusing newer files, upgrading
//! files of the first format, whose instance values have no effect state.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::embedded::{EmbeddedStore, FILE_NAME};
use statewire::store::{
    CasOutcome, Commit, Expect, InstanceRecord, InstanceStatus, PageRequest, Store, StoreError,
    Wakeup,
};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("test finishes in time")
}

fn key(machine: &str, instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse(machine).unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

fn record(version: u64) -> InstanceRecord {
    InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: 1_000 + version as i64,
        snapshot: format!("{{\"v\":{version}}}"),
        state: serde_json::json!({ "v": version }),
        context: serde_json::json!({ "public": {} }),
        tags: vec![],
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1_000,
        updated_at_ms: 1_000 + version as i64,
        effects: Default::default(),
    }
}

fn commit(key: &InstanceKey, expect: Expect, version: u64) -> Commit {
    Commit {
        key: key.clone(),
        expect,
        next: record(version),
        transition: None,
    }
}

/// Writes a format version into the file the way a future build would.
fn stamp_format_version(dir: &Path, version: u32) {
    let db = redb::Database::create(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("meta");
        let mut meta = txn.open_table(def).unwrap();
        let mut value = vec![1u8];
        value.extend_from_slice(&version.to_be_bytes());
        meta.insert(
            b"statewire.store.format_version".as_slice(),
            value.as_slice(),
        )
        .unwrap();
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_file_from_a_newer_format_is_refused_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        drop(EmbeddedStore::open(dir.path()).unwrap());
        stamp_format_version(dir.path(), 2);
        drop(EmbeddedStore::open(dir.path()).expect("the current format opens"));
        stamp_format_version(dir.path(), 3);
        let refused = EmbeddedStore::open(dir.path());
        let Err(StoreError::Backend(message)) = refused else {
            panic!("a newer format is refused");
        };
        assert!(message.contains("format version 3"), "{message}");
    })
    .await;
}

#[tokio::test]
async fn the_format_version_name_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    within(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let name = "statewire.store.format_version";
        assert!(store.put_meta(name, b"\0\0\0\x09").await.is_err());
        assert_eq!(store.get_meta(name).await.unwrap(), Some(vec![0, 0, 0, 2]));
    })
    .await;
}

/// Puts an instance value the way the first file format stored it: format byte 1, the
/// version, then JSON without any effect state.
fn put_format_1_instance(dir: &Path, key_bytes: &[u8], record: &InstanceRecord) {
    let db = redb::Database::create(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("instances");
        let mut instances = txn.open_table(def).unwrap();
        let mut value = vec![1u8];
        value.extend_from_slice(&record.version.to_be_bytes());
        let json = serde_json::to_vec(record).unwrap();
        assert!(
            !String::from_utf8_lossy(&json).contains("effects"),
            "empty effect state is left out, as in the first format"
        );
        value.extend_from_slice(&json);
        instances.insert(key_bytes, value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_format_1_file_is_upgraded_and_its_instances_read_with_empty_effects() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("door", "old");
    let old = record(3);
    within(async {
        drop(EmbeddedStore::open(dir.path()).unwrap());
        stamp_format_version(dir.path(), 1);
        put_format_1_instance(dir.path(), b"door\0old", &old);

        let store = EmbeddedStore::open(dir.path()).expect("a format 1 file opens");
        let name = "statewire.store.format_version";
        assert_eq!(store.get_meta(name).await.unwrap(), Some(vec![0, 0, 0, 2]));
        let loaded = store.load_instance(&k).await.unwrap();
        assert_eq!(loaded.as_ref(), Some(&old));
        assert!(loaded.unwrap().effects.is_empty());
        let listed = store
            .list_instances(&k.machine, &PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        assert!(store.due_wakeups(i64::MAX, 10).await.unwrap().is_empty());

        let mut next = commit(&k, Expect::Version(3), 4);
        next.next.effects.wake_at_ms = Some(77);
        assert_eq!(
            store.commit(next).await.unwrap(),
            CasOutcome::Applied { version: 4 }
        );
        let due = store.due_wakeups(i64::MAX, 10).await.unwrap();
        assert_eq!(
            due,
            [Wakeup {
                wake_at_ms: 77,
                key: k.clone()
            }]
        );
        store.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_format_1_instance_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("door", "gone");
    within(async {
        drop(EmbeddedStore::open(dir.path()).unwrap());
        stamp_format_version(dir.path(), 1);
        put_format_1_instance(dir.path(), b"door\0gone", &record(1));
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(store.delete_instance(&k).await.unwrap());
        assert_eq!(store.load_instance(&k).await.unwrap(), None);
        store.shutdown().await.unwrap();
    })
    .await;
}
