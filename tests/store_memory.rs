//! The in-memory store against the behaviour every backend must show.

use std::time::Duration;

use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::memory::MemoryStore;
use statewire::store::{
    CasOutcome, Commit, Expect, InstanceRecord, InstanceStatus, PageRequest, Store, StoreError,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn key(instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("toggle").unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

fn record(version: u64) -> InstanceRecord {
    InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: version as i64,
        snapshot: "{}".to_owned(),
        state: serde_json::json!("on"),
        context: serde_json::json!({}),
        tags: Vec::new(),
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1,
        updated_at_ms: 1,
    }
}

#[tokio::test]
async fn memory_store_applies_compare_and_set_by_version() {
    tokio::time::timeout(TIMEOUT, async {
        let store = MemoryStore::new();
        let k = key("a");
        let create = Commit {
            key: k.clone(),
            expect: Expect::Absent,
            next: record(1),
            transition: None,
        };
        assert_eq!(
            store.commit(create.clone()).await.unwrap(),
            CasOutcome::Applied { version: 1 }
        );
        assert_eq!(
            store.commit(create).await.unwrap(),
            CasOutcome::Conflict { current: Some(1) }
        );
        let update = Commit {
            key: k.clone(),
            expect: Expect::Version(1),
            next: record(2),
            transition: None,
        };
        assert_eq!(
            store.commit(update.clone()).await.unwrap(),
            CasOutcome::Applied { version: 2 }
        );
        assert_eq!(
            store.commit(update).await.unwrap(),
            CasOutcome::Conflict { current: Some(2) }
        );
        assert_eq!(store.load_instance(&k).await.unwrap().unwrap().version, 2);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn memory_store_refuses_writes_after_shutdown() {
    tokio::time::timeout(TIMEOUT, async {
        let store = MemoryStore::new();
        store.shutdown().await.unwrap();
        let err = store.put_meta("org", b"x").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let page = store
            .list_instances(&k_machine(), &PageRequest::default())
            .await
            .unwrap();
        assert!(page.items.is_empty());
    })
    .await
    .unwrap();
}

fn k_machine() -> MachineName {
    MachineName::parse("toggle").unwrap()
}
