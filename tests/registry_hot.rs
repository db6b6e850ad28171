//! The hot-instance registry against a watched store: one load per cold instance, eviction,
//! compare-and-set conflicts, unknown outcomes, and commit listeners.

mod http_support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use statewire::config::{Config, RegistryLimits};
use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::registry::{CommitListener, CreateRequest, Registry, RegistryError};
use statewire::runtime::{MachineCode, Runtime};
use statewire::store::{
    Commit, Expect, InstanceRecord, InstanceStatus, MachineRecord, Store, VersionRecord,
};

use http_support::probe_store::ProbeStore;
use http_support::{machines, within};

struct Fixture {
    store: Arc<ProbeStore>,
    registry: Registry,
    version: MachineVersionId,
    _dir: tempfile::TempDir,
}

fn key(instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("toggle").unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

/// A registry over a probe store holding the toggle machine (code stored, no instances).
async fn fixture(limits: RegistryLimits) -> Fixture {
    let f = bare_fixture(limits).await;
    let code = MachineCode::new(machines::toggle().await, 10_000_000).unwrap();
    f.store.put_bundle(&code.hash, &code.bytes).await.unwrap();
    f.store
        .put_version(&VersionRecord {
            machine: MachineName::parse("toggle").unwrap(),
            id: f.version.clone(),
            created_at_ms: 1,
            client_info: "test".into(),
            code_hash: code.hash.to_string(),
            index_selectors: json!({}),
        })
        .await
        .unwrap();
    f
}

/// A registry over a probe store with the `toggle` machine but no code: enough for loads.
async fn bare_fixture(limits: RegistryLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProbeStore::default());
    let version = MachineVersionId::generate();
    store
        .create_machine(&MachineRecord {
            name: MachineName::parse("toggle").unwrap(),
            created_at_ms: 1,
            indexes: vec![],
            current_version: Some(version.clone()),
        })
        .await
        .unwrap();
    let config = http_support::test_config(dir.path());
    let runtime = Runtime::new(config.runtime_config()).unwrap();
    let registry = Registry::new(store.clone(), runtime, &limits);
    Fixture {
        store,
        registry,
        version,
        _dir: dir,
    }
}

impl Fixture {
    /// Creates toggle instance `name` with its owner as the caller.
    async fn create(&self, name: &str) -> Result<Arc<InstanceRecord>, RegistryError> {
        let request = CreateRequest {
            version: self.version.clone(),
            context: json!({}),
            auth_context: as_owner(name),
        };
        self.registry.create(key(name), request).await
    }
}

fn limits() -> RegistryLimits {
    Config::default().registry
}

/// Writes an instance straight into the store, as another node would.
async fn put_instance(f: &Fixture, name: &str) -> InstanceRecord {
    let record = InstanceRecord {
        machine_version: f.version.clone(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version: 1,
        ts_ms: 1_000,
        snapshot: json!({"value": "off", "context": {"public": {"toggleCount": 1}}}).to_string(),
        state: json!("off"),
        context: json!({"public": {"toggleCount": 1}}),
        tags: vec![],
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
        effects: Default::default(),
    };
    f.store
        .commit(Commit {
            key: key(name),
            expect: Expect::Absent,
            next: record.clone(),
            transition: None,
        })
        .await
        .unwrap();
    record
}

fn as_owner(name: &str) -> Value {
    json!({"sub": name})
}

#[tokio::test]
async fn a_cold_instance_is_loaded_once_however_many_requests_race_for_it() {
    within(120, async {
        let f = bare_fixture(limits()).await;
        let stored = put_instance(&f, "a").await;
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let registry = f.registry.clone();
            reads.spawn(async move { registry.load(&key("a")).await.map(|r| r.write_id) });
        }
        while let Some(read) = reads.join_next().await {
            assert_eq!(read.unwrap().unwrap(), stored.write_id);
        }
        assert_eq!(f.store.loads(), 1);
        assert_eq!(f.registry.stats().loads, 1);
    })
    .await;
}

#[tokio::test]
async fn a_missing_instance_is_not_found_and_not_kept_hot() {
    within(120, async {
        let f = bare_fixture(limits()).await;
        let err = f.registry.load(&key("ghost")).await.unwrap_err();
        assert!(matches!(err, RegistryError::InstanceNotFound(_)), "{err}");
        assert_eq!(f.registry.stats().hot, 0);
    })
    .await;
}

#[tokio::test]
async fn an_evicted_instance_reloads_to_the_same_state() {
    within(120, async {
        let f = fixture(limits()).await;
        let token = as_owner("a");
        let created = f.create("a").await.unwrap();
        let after = f
            .registry
            .send_event(key("a"), json!({"type": "toggle"}), token.clone())
            .await
            .unwrap();
        assert_eq!(after.version, created.version + 1);

        assert_eq!(f.registry.evict_idle(Duration::ZERO), 1);
        assert_eq!(f.registry.stats().hot, 0);
        let loads_before = f.store.loads();
        let reloaded = f.registry.load(&key("a")).await.unwrap();
        assert_eq!(*reloaded, *after);
        assert_eq!(f.store.loads(), loads_before + 1);

        let next = f
            .registry
            .send_event(key("a"), json!({"type": "toggle"}), token)
            .await
            .unwrap();
        assert_eq!(next.version, after.version + 1);
        assert_eq!(next.state, json!("off"));
    })
    .await;
}

#[tokio::test]
async fn the_bound_evicts_the_least_recently_used_instances() {
    within(120, async {
        let f = bare_fixture(RegistryLimits {
            max_hot_instances: 10,
            idle_evict_ms: 3_600_000,
        })
        .await;
        for i in 0..30 {
            put_instance(&f, &format!("i{i}")).await;
        }
        for i in 0..30 {
            f.registry.load(&key(&format!("i{i}"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Eviction runs on the blocking pool; give it a moment to finish.
        for _ in 0..100 {
            if f.registry.stats().hot <= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(f.registry.stats().hot <= 10, "{:?}", f.registry.stats());
        assert!(f.registry.stats().evictions >= 20);
        let loads = f.store.loads();
        f.registry.load(&key("i29")).await.unwrap();
        assert_eq!(
            f.store.loads(),
            loads,
            "the most recent instance stayed hot"
        );
    })
    .await;
}

#[tokio::test]
async fn a_write_from_elsewhere_makes_the_event_rerun_on_the_newer_snapshot() {
    within(120, async {
        let f = fixture(limits()).await;
        let token = as_owner("a");
        let created = f.create("a").await.unwrap();
        // Another node moves the instance to `on` behind this registry's back.
        let mut moved = (*created).clone();
        moved.version = 2;
        moved.state = json!("on");
        moved.snapshot = json!({"value": "on", "context": created.context}).to_string();
        moved.write_id = uuid::Uuid::new_v4();
        f.store
            .commit(Commit {
                key: key("a"),
                expect: Expect::Version(1),
                next: moved,
                transition: None,
            })
            .await
            .unwrap();

        let after = f
            .registry
            .send_event(key("a"), json!({"type": "toggle"}), token)
            .await
            .unwrap();
        assert_eq!(after.version, 3, "applied once, on top of the other write");
        assert_eq!(after.state, json!("off"), "toggled from the newer `on`");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_commit_outcome_is_settled_without_applying_twice() {
    within(120, async {
        let f = fixture(limits()).await;
        let token = as_owner("a");
        f.create("a").await.unwrap();
        f.store
            .unknown_after_next_apply
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let after = f
            .registry
            .send_event(key("a"), json!({"type": "toggle"}), token)
            .await
            .unwrap();
        assert_eq!(after.version, 2);
        assert_eq!(after.state, json!("on"));
        let stored = f.store.load_instance_linearizable(&key("a")).await.unwrap();
        assert_eq!(stored.unwrap().version, 2);
    })
    .await;
}

/// Records each notification and whether the store had applied that commit already.
#[derive(Default)]
struct Recorder {
    store: Mutex<Option<Arc<ProbeStore>>>,
    seen: Mutex<Vec<(u64, bool)>>,
    deleted: Mutex<Vec<InstanceKey>>,
}

impl CommitListener for Recorder {
    fn on_commit(&self, key: &InstanceKey, record: &Arc<InstanceRecord>, _effects: &[Value]) {
        let durable = self
            .store
            .lock()
            .as_ref()
            .is_some_and(|s| s.was_applied(key, record.version));
        self.seen.lock().push((record.version, durable));
    }

    fn on_delete(&self, key: &InstanceKey) {
        self.deleted.lock().push(key.clone());
    }
}

#[tokio::test]
async fn listeners_hear_each_write_after_the_store_applied_it() {
    within(120, async {
        let f = fixture(limits()).await;
        let recorder = Arc::new(Recorder::default());
        *recorder.store.lock() = Some(f.store.clone());
        f.registry.add_listener(recorder.clone());
        let token = as_owner("a");
        f.create("a").await.unwrap();
        for _ in 0..3 {
            f.registry
                .send_event(key("a"), json!({"type": "toggle"}), token.clone())
                .await
                .unwrap();
        }
        f.registry
            .set_status(key("a"), InstanceStatus::Paused)
            .await
            .unwrap();
        let refused = f
            .registry
            .send_event(key("a"), json!({"type": "toggle"}), token)
            .await
            .unwrap_err();
        assert!(matches!(refused, RegistryError::Paused(_)), "{refused}");
        f.registry.delete(key("a")).await.unwrap();

        let seen = recorder.seen.lock().clone();
        assert_eq!(
            seen,
            vec![(1, true), (2, true), (3, true), (4, true), (5, true)]
        );
        assert_eq!(*recorder.deleted.lock(), vec![key("a")]);
    })
    .await;
}

#[tokio::test]
async fn a_drained_registry_refuses_new_writes() {
    within(120, async {
        let f = bare_fixture(limits()).await;
        assert!(f.registry.drain(Duration::from_secs(1)).await);
        let err = f.create("a").await.unwrap_err();
        assert!(matches!(err, RegistryError::ShuttingDown), "{err}");
    })
    .await;
}
