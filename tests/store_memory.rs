//! The in-memory store against the behaviour every backend must show.

use std::sync::Arc;
use std::time::Duration;

use statewire::ids::MachineName;
use statewire::store::contract::{self, WakeIndex};
use statewire::store::memory::MemoryStore;
use statewire::store::{PageRequest, Store, StoreError};

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_contract() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    tokio::time::timeout(TIMEOUT, contract::run_all(store, WakeIndex::Exact))
        .await
        .expect("contract suite finishes in time");
}

#[tokio::test]
async fn memory_store_refuses_writes_after_shutdown_but_still_reads() {
    tokio::time::timeout(TIMEOUT, async {
        let store = MemoryStore::new();
        store.put_meta("org", b"x").await.unwrap();
        store.shutdown().await.unwrap();
        let err = store.put_meta("org", b"y").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(store.get_meta("org").await.unwrap(), Some(b"x".to_vec()));
        let machine = MachineName::parse("toggle").unwrap();
        let listed = store
            .list_instances(&machine, &PageRequest::default())
            .await;
        assert!(listed.unwrap().items.is_empty());
    })
    .await
    .expect("test finishes in time");
}
