//! Machines, versions, bundles, uploads, keys and meta values.

use std::sync::Arc;

use super::{collect_pages, instance_key, page, unique_machine};
use crate::ids::{KeyId, MachineName, MachineVersionId};
use crate::store::{
    KeyRecord, MachineRecord, PageRequest, Store, StoreError, UploadRecord, VersionRecord,
};

fn machine_record(name: &MachineName) -> MachineRecord {
    MachineRecord {
        name: name.clone(),
        created_at_ms: 1_700_000_000_123,
        indexes: vec!["by-owner".to_owned(), "by-state".to_owned()],
        current_version: None,
    }
}

fn version_record(machine: &MachineName, created_at_ms: i64) -> VersionRecord {
    VersionRecord {
        machine: machine.clone(),
        id: MachineVersionId::generate(),
        created_at_ms,
        client_info: format!("v{created_at_ms}"),
        code_hash: format!("{created_at_ms:064x}"),
        index_selectors: serde_json::json!({ "by-owner": "$.owner" }),
    }
}

fn key_record(tag: &str) -> KeyRecord {
    KeyRecord {
        id: KeyId::generate(),
        name: format!("key {tag}"),
        scopes: vec!["events.write".to_owned(), "state.read".to_owned()],
        secret: format!("sbsec_{}", uuid::Uuid::new_v4().simple()),
        created_at_ms: 1_700_000_000_456,
    }
}

/// Machines create once, read back equal, take a current version, list in name order across
/// pages, and delete once.
pub async fn machines_round_trip_and_page_by_name(store: &Arc<dyn Store>) {
    let base = unique_machine("mach");
    let names: Vec<MachineName> = (0..7)
        .map(|i| MachineName::parse(format!("{base}-{i}")).expect("valid name"))
        .collect();
    for name in names.iter().rev() {
        assert!(store.create_machine(&machine_record(name)).await.unwrap());
    }
    let mut changed = machine_record(&names[0]);
    changed.indexes.clear();
    assert!(
        !store.create_machine(&changed).await.unwrap(),
        "a second create of the same name is refused"
    );
    assert_eq!(
        store.get_machine(&names[0]).await.unwrap(),
        Some(machine_record(&names[0])),
        "the refused create changed nothing"
    );

    let version = MachineVersionId::generate();
    store
        .set_current_version(&names[1], &version)
        .await
        .unwrap();
    let read = store.get_machine(&names[1]).await.unwrap().unwrap();
    assert_eq!(read.current_version, Some(version));

    let listed = collect_pages(3, |p| {
        let store = Arc::clone(store);
        async move { store.list_machines(&p).await.unwrap() }
    })
    .await;
    let listed_names: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert!(
        listed_names.windows(2).all(|w| w[0] < w[1]),
        "machines list strictly by name"
    );
    let ours: Vec<&str> = listed_names
        .iter()
        .copied()
        .filter(|n| n.starts_with(base.as_str()))
        .collect();
    let expected: Vec<&str> = names.iter().map(MachineName::as_str).collect();
    assert_eq!(ours, expected, "each machine of this run listed once");

    for name in &names {
        assert!(store.delete_machine(name).await.unwrap());
        assert!(!store.delete_machine(name).await.unwrap());
        assert_eq!(store.get_machine(name).await.unwrap(), None);
    }
}

/// Versions read back by id, list newest first across pages, replace on a second put of the
/// same id, and disappear with their machine.
pub async fn versions_list_newest_first_and_go_with_machine(store: &Arc<dyn Store>) {
    let machine = unique_machine("vers");
    assert!(store
        .create_machine(&machine_record(&machine))
        .await
        .unwrap());
    let mut versions: Vec<VersionRecord> = [30, 10, 50, 20, 40]
        .iter()
        .map(|ms| version_record(&machine, 1_700_000_000_000 + ms))
        .collect();
    for v in &versions {
        store.put_version(v).await.unwrap();
    }
    let mut replaced = versions[1].clone();
    replaced.client_info = "replaced".to_owned();
    store.put_version(&replaced).await.unwrap();
    versions[1] = replaced;

    for v in &versions {
        let read = store.get_version(&machine, &v.id).await.unwrap();
        assert_eq!(read.as_ref(), Some(v));
    }
    let other = unique_machine("vers-other");
    assert_eq!(
        store.get_version(&other, &versions[0].id).await.unwrap(),
        None,
        "a version belongs to its machine"
    );

    versions.sort_by_key(|v| std::cmp::Reverse(v.created_at_ms));
    for limit in [1, 2, 5, 100] {
        let listed = collect_pages(limit, |p| {
            let store = Arc::clone(store);
            let machine = machine.clone();
            async move { store.list_versions(&machine, &p).await.unwrap() }
        })
        .await;
        assert_eq!(listed, versions, "newest first, paging by {limit}");
    }

    assert!(store.delete_machine(&machine).await.unwrap());
    let listed = store.list_versions(&machine, &PageRequest::default()).await;
    assert!(listed.unwrap().items.is_empty());
    for v in &versions {
        assert_eq!(store.get_version(&machine, &v.id).await.unwrap(), None);
    }
}

/// Uploads are replaced by a second put and deleted idempotently.
pub async fn uploads_round_trip_and_delete_idempotently(store: &Arc<dyn Store>) {
    let machine = unique_machine("upl");
    let mut upload = UploadRecord {
        id: format!("upl-{}", uuid::Uuid::new_v4().simple()),
        machine,
        gzip: true,
        created_at_ms: 1_700_000_000_789,
        code_hash: None,
    };
    store.put_upload(&upload).await.unwrap();
    assert_eq!(
        store.get_upload(&upload.id).await.unwrap().as_ref(),
        Some(&upload)
    );
    upload.code_hash = Some("ab".repeat(32));
    store.put_upload(&upload).await.unwrap();
    assert_eq!(
        store.get_upload(&upload.id).await.unwrap().as_ref(),
        Some(&upload)
    );
    store.delete_upload(&upload.id).await.unwrap();
    assert_eq!(store.get_upload(&upload.id).await.unwrap(), None);
    store.delete_upload(&upload.id).await.unwrap();
}

/// Keys read back equal, list by id across pages, and delete once.
pub async fn keys_round_trip_and_page_by_id(store: &Arc<dyn Store>) {
    let keys: Vec<KeyRecord> = (0..5).map(|i| key_record(&i.to_string())).collect();
    for k in &keys {
        store.put_key(k).await.unwrap();
        assert_eq!(store.get_key(&k.id).await.unwrap().as_ref(), Some(k));
    }
    let listed = collect_pages(2, |p| {
        let store = Arc::clone(store);
        async move { store.list_keys(&p).await.unwrap() }
    })
    .await;
    assert!(
        listed.windows(2).all(|w| w[0].id < w[1].id),
        "keys list strictly by id"
    );
    let mut expected = keys.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    let ours: Vec<KeyRecord> = listed
        .into_iter()
        .filter(|k| keys.iter().any(|mine| mine.id == k.id))
        .collect();
    assert_eq!(ours, expected, "each key of this run listed once");
    for k in &keys {
        assert!(store.delete_key(&k.id).await.unwrap());
        assert!(!store.delete_key(&k.id).await.unwrap());
        assert_eq!(store.get_key(&k.id).await.unwrap(), None);
    }
}

/// Bundles are stored by hash, byte for byte, and a second put of the same hash is harmless.
pub async fn bundles_are_content_addressed(store: &Arc<dyn Store>) {
    let code: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let hash = format!("test-{}", uuid::Uuid::new_v4().simple());
    store.put_bundle(&hash, &code).await.unwrap();
    store.put_bundle(&hash, &code).await.unwrap();
    assert_eq!(store.get_bundle(&hash).await.unwrap(), Some(code));
    let empty = format!("test-{}", uuid::Uuid::new_v4().simple());
    store.put_bundle(&empty, &[]).await.unwrap();
    assert_eq!(store.get_bundle(&empty).await.unwrap(), Some(Vec::new()));
}

/// Meta values read back byte for byte and are overwritten by a second put.
pub async fn meta_values_round_trip(store: &Arc<dyn Store>) {
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    store.put_meta(&name, b"first\0value").await.unwrap();
    assert_eq!(
        store.get_meta(&name).await.unwrap(),
        Some(b"first\0value".to_vec())
    );
    store.put_meta(&name, b"second").await.unwrap();
    assert_eq!(
        store.get_meta(&name).await.unwrap(),
        Some(b"second".to_vec())
    );
}

/// A cursor that no listing could have produced is refused, not read as a position.
pub async fn invalid_cursors_are_refused(store: &Arc<dyn Store>) {
    let machine = unique_machine("cursor");
    let key = instance_key(&machine, "a");
    let bad = page(10, Some("not a cursor!".to_owned()));
    let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::InvalidCursor));
    assert!(refused(store.list_machines(&bad).await.map(drop)));
    assert!(refused(store.list_versions(&machine, &bad).await.map(drop)));
    assert!(refused(
        store.list_instances(&machine, &bad).await.map(drop)
    ));
    assert!(refused(store.list_transitions(&key, &bad).await.map(drop)));
    assert!(refused(store.list_keys(&bad).await.map(drop)));
}
