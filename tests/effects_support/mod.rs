//! What the effect tests share: a server with short retries, machines deployed over HTTP,
//! and readers of state, history and effect state.

#![allow(dead_code)]

pub mod machines;
pub mod metrics_load;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use statewire::config::{Config, StoreKind};
use statewire::ids::{InstanceKey, InstanceName, MachineName};
use statewire::server::Extensions;
use statewire::store::embedded::EmbeddedStore;
use statewire::store::{EffectState, InstanceRecord, PageRequest, Store, TransitionRecord};

use crate::http_support::{machines as upload, Client, Reply, TestServer};

/// Retry interval in tests: short, so five attempts take a quarter of a second.
pub const RETRY_MS: u64 = 50;

/// How late a delivery may be and still pass ("never early, and within +N ms").
pub const LATE_MS: i64 = 150;

/// A server on 127.0.0.1:0 with the memory store and [`RETRY_MS`] between attempts.
pub async fn server() -> TestServer {
    server_with(|_| {}, Extensions::default()).await
}

pub async fn server_with(adjust: impl FnOnce(&mut Config), ext: Extensions) -> TestServer {
    TestServer::start_with(
        |c| {
            c.effects.retry_interval_ms = RETRY_MS;
            adjust(c);
        },
        ext,
    )
    .await
}

pub fn key(machine: &str, instance: &str) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse(machine).unwrap(),
        InstanceName::parse(instance).unwrap(),
    )
}

/// Creates `machine` with `code` as its current version, over the public API.
pub async fn deploy(s: &TestServer, machine: &str, code: &str) -> String {
    upload::machine_with_version(s, machine, code.as_bytes()).await
}

/// Deploys `code` as machine `machine` on a fresh embedded data directory, then stops that
/// server; answers the directory and an admin token for whatever serves it next.
pub async fn deployed_on_disk(machine: &str, code: &str) -> (tempfile::TempDir, String) {
    let s = TestServer::start_with(
        |c| c.store.kind = StoreKind::Embedded,
        Extensions::default(),
    )
    .await;
    deploy(&s, machine, code).await;
    let admin = s.admin_token.clone();
    (s.shutdown().await, admin)
}

/// Creates an instance as the admin; answers the reply body.
pub async fn create(s: &TestServer, machine: &str, instance: &str) -> Value {
    create_with(s, machine, instance, json!({})).await
}

pub async fn create_with(s: &TestServer, machine: &str, instance: &str, context: Value) -> Value {
    let r = s
        .admin()
        .post(
            &format!("/machines/{machine}"),
            &json!({"slug": instance, "context": context}),
        )
        .await;
    assert_eq!(r.status, 200, "create: {:?}", r.body);
    r.json()
}

/// Sends an event as the admin.
pub async fn send(s: &TestServer, machine: &str, instance: &str, event: Value) -> Reply {
    s.admin()
        .post(
            &format!("/machines/{machine}/i/{instance}/events"),
            &json!({ "event": event }),
        )
        .await
}

/// Sends an event that must be accepted; answers the new state value.
pub async fn send_ok(s: &TestServer, machine: &str, instance: &str, event: Value) -> Value {
    let r = send(s, machine, instance, event).await;
    assert_eq!(r.status, 200, "event: {:?}", r.body);
    r.json()["state"].clone()
}

/// The instance's current state value, read as `admin` through `client` (a server this
/// test does not hold as a [`TestServer`], such as the binary run as a child process).
pub async fn state_of(client: &Client, admin: &str, machine: &str, instance: &str) -> Value {
    let r = client
        .authed(admin)
        .get(&format!("/machines/{machine}/i/{instance}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.json()["state"].clone()
}

/// The instance's current state value, as a reader sees it.
pub async fn state(s: &TestServer, machine: &str, instance: &str) -> Value {
    let r = s
        .admin()
        .get(&format!("/machines/{machine}/i/{instance}"))
        .await;
    assert_eq!(r.status, 200, "read: {:?}", r.body);
    r.json()["state"].clone()
}

/// The full context, from the admin view.
pub async fn context(s: &TestServer, machine: &str, instance: &str) -> Value {
    let r = s
        .admin()
        .get(&format!("/machines/{machine}/i/{instance}/admin"))
        .await;
    assert_eq!(r.status, 200, "admin view: {:?}", r.body);
    r.json()["context"].clone()
}

/// Event types of the transitions listing, oldest first.
pub async fn history(s: &TestServer, machine: &str, instance: &str) -> Vec<String> {
    let r = s
        .admin()
        .get(&format!("/machines/{machine}/i/{instance}/events"))
        .await;
    assert_eq!(r.status, 200, "history: {:?}", r.body);
    let mut types: Vec<String> = r.json()["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| t["event"]["type"].as_str().unwrap_or("").to_owned())
        .collect();
    types.reverse();
    types
}

/// Polls until the instance is in `expected` or `within` passes; answers the time it took.
pub async fn wait_for_state(
    s: &TestServer,
    machine: &str,
    instance: &str,
    expected: &Value,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = state(s, machine, instance).await;
        if &now == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{machine}/{instance} still in {now} after {within:?}, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The stored record.
pub async fn record(store: &dyn Store, machine: &str, instance: &str) -> InstanceRecord {
    store
        .load_instance(&key(machine, instance))
        .await
        .expect("store read")
        .expect("instance exists")
}

/// The stored effect state.
pub async fn effects(store: &dyn Store, machine: &str, instance: &str) -> EffectState {
    record(store, machine, instance).await.effects
}

/// The stored history, oldest first, with the commit times.
pub async fn transitions(
    store: &dyn Store,
    machine: &str,
    instance: &str,
) -> Vec<TransitionRecord> {
    let page = PageRequest {
        cursor: None,
        limit: 1000,
    };
    let mut items = store
        .list_transitions(&key(machine, instance), &page)
        .await
        .expect("history")
        .items;
    items.reverse();
    items
}

/// The record and history (oldest first) an embedded data directory holds, read once no
/// server runs on it.
pub async fn stored(
    dir: &Path,
    machine: &str,
    instance: &str,
) -> (InstanceRecord, Vec<TransitionRecord>) {
    let store = EmbeddedStore::open(dir).expect("the store opens");
    let found = record(&store, machine, instance).await;
    let history = transitions(&store, machine, instance).await;
    store.shutdown().await.unwrap();
    (found, history)
}

/// Checks that a timer armed at `armed_ms` with `delay_ms` was delivered at `fired_ms`:
/// never early, and at most [`LATE_MS`] late (both times are the server's commit times).
pub fn assert_on_time(armed_ms: i64, delay_ms: i64, fired_ms: i64) {
    let lag = fired_ms - (armed_ms + delay_ms);
    println!("delivered {lag}ms after the due time");
    assert!(lag >= 0, "delivered {}ms early", -lag);
    assert!(lag <= LATE_MS, "delivered {lag}ms late");
}
