//! Deleting an instance while one of its services runs, then creating an instance with the
//! same name at once: nothing of the deleted instance (its service's result, its settle
//! window, requests waiting for it) may reach the new one.

mod effects_support;
mod http_support;
mod services_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use effects_support::{create_with, deploy, history, send, server_with, state};
use hmac::{Hmac, Mac};
use http_support::{within, TestServer};
use serde_json::{json, Value};
use services_support::Backend;
use statewire::server::Extensions;

/// `RUN` invokes `job`, a fetch of `/slow` (2 s); its result moves the machine to `finished`.
const ON_RUN: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "svc",
  predictableActionArguments: true,
  initial: "idle",
  context: { base: "" },
  states: {
    idle: { on: { RUN: "running" } },
    running: {
      invoke: { id: "job", src: (ctx) => fetch(ctx.base + "/slow").then((r) => r.text()),
                onDone: "finished" },
    },
    finished: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// The initial state invokes `job` (a fetch of `/slow`, 2 s).
const AT_ONCE: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "svc",
  predictableActionArguments: true,
  initial: "running",
  context: { base: "" },
  states: {
    running: {
      invoke: { id: "job", src: (ctx) => fetch(ctx.base + "/slow").then((r) => r.text()),
                onDone: "finished" },
    },
    finished: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// The settle window: longer than the slow fetch, shorter than a deletion delay plus it.
const WINDOW_MS: u64 = 2_400;

async fn set_up(code: &str) -> (Arc<TestServer>, Backend) {
    let backend = Backend::start().await;
    let s = server_with(
        |c| {
            c.effects.fetch.allow = vec!["127.0.0.1".to_owned()];
            c.effects.settle_window_ms = WINDOW_MS;
        },
        Extensions::default(),
    )
    .await;
    deploy(&s, "svc", code).await;
    (Arc::new(s), backend)
}

async fn delete(s: &TestServer, instance: &str) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"svc").unwrap();
    mac.update(instance.as_bytes());
    let proof =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let body = json!({"dangerDataWillBeDeletedForever": true,
        "hmacSha256OfMachineInstanceNameWithMachineNameKey": proof});
    let r = s
        .admin()
        .delete(&format!("/machines/svc/i/{instance}"), &body)
        .await;
    assert_eq!(r.status, 204, "delete: {:?}", r.body);
}

async fn timed_create(s: &TestServer, b: &Backend, instance: &str) -> (Value, Duration) {
    let started = Instant::now();
    let reply = create_with(s, "svc", instance, json!({"base": b.base})).await;
    (reply, started.elapsed())
}

#[tokio::test]
async fn a_deleted_instances_service_does_not_reach_a_new_one_of_that_name() {
    within(60, async {
        let (s, b) = set_up(ON_RUN).await;
        create_with(&s, "svc", "dr2", json!({"base": b.base})).await;
        let running = {
            let s = s.clone();
            tokio::spawn(async move { send(&s, "svc", "dr2", json!({"type": "RUN"})).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(b.count("/slow"), 1, "the service runs");
        delete(&s, "dr2").await;
        let (created, took) = timed_create(&s, &b, "dr2").await;
        println!("new dr2 created in {took:?}");
        assert_eq!(created["state"], "idle", "{created}");
        assert!(
            took < Duration::from_millis(1_000),
            "waited for the old service: {took:?}"
        );

        // The request that waited for the deleted instance gets that instance's state.
        let old = running.await.unwrap();
        assert_eq!(old.status, 200, "{:?}", old.body);
        assert_eq!(old.json()["state"], "running", "{:?}", old.body);

        // Well after the old fetch would have answered, the new instance has seen nothing.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(state(&s, "svc", "dr2").await, "idle");
        assert!(history(&s, "svc", "dr2").await.is_empty());
        assert_eq!(s.running().registry().unsettled(), 0);

        // The new instance runs its own service normally.
        let r = send(&s, "svc", "dr2", json!({"type": "RUN"})).await;
        assert_eq!(r.json()["state"], "finished", "{:?}", r.body);
        assert_eq!(history(&s, "svc", "dr2").await, ["RUN", "done.invoke.job"]);
    })
    .await;
}

#[tokio::test]
async fn a_new_instance_of_a_deleted_name_runs_its_own_initial_service() {
    within(60, async {
        let (s, b) = set_up(AT_ONCE).await;
        let first = {
            let (s, base) = (s.clone(), b.base.clone());
            tokio::spawn(async move { create_with(&s, "svc", "dr2", json!({"base": base})).await })
        };
        // Deleted once its service runs (the create request is still waiting for it).
        tokio::time::timeout(Duration::from_secs(10), async {
            while b.count("/slow") < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the first service starts");
        tokio::time::sleep(Duration::from_millis(800)).await;
        delete(&s, "dr2").await;
        let (created, took) = timed_create(&s, &b, "dr2").await;
        // The first create request was waiting for the deleted instance: it gets that one's
        // state, not the new instance's.
        assert_eq!(first.await.unwrap()["state"], "running");
        println!("new dr2 settled in {took:?}");
        assert_eq!(b.count("/slow"), 2, "the new instance fetched for itself");
        // Its own fetch answers after 2 s, inside its own window; the old window (which ends
        // before that) does not stop it, and the old fetch's result is not applied.
        assert_eq!(created["state"], "finished", "{created}");
        assert!(
            took >= Duration::from_millis(1_900),
            "finished early: {took:?}"
        );
        assert_eq!(history(&s, "svc", "dr2").await, ["done.invoke.job"]);
        let stored = effects_support::effects(s.store().as_ref(), "svc", "dr2").await;
        assert!(stored.services.is_empty(), "{:?}", stored.services);
        assert_eq!(s.running().registry().unsettled(), 0);
    })
    .await;
}
