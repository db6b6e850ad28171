//! The effect half of the metrics load: durable timers that fire, a timer whose guard throws
//! until it is dropped, a fire that finds its timer gone, messages between a parent and
//! its persistent child, and invoked services that finish, fail, or outlive the settle window. Each round moves every effect metric again, so Prometheus sees the
//! counters both before and after a change.

use std::time::Duration;

use serde_json::json;

use super::machines::{KID, PARENT, THROWS, TIMED};
use super::{create, deploy, key, send_ok, wait_for_state};
use crate::http_support::TestServer;

/// Long enough for a 300 ms timer to fire, or for a throwing one to use its five attempts at
/// the test's short retry interval.
const SETTLED: Duration = Duration::from_secs(10);

/// The settle window the metrics server runs with: long enough for [`SERVICES`]'s slow
/// service to finish, short enough for its hanging one to be cut off quickly.
pub const SETTLE_WINDOW_MS: u64 = 2_500;

/// `SLOW` runs a service that waits 1.5 s (a guest pinned across a scrape), then finishes;
/// `FAIL` one that rejects; `HANG` one that never settles, so the window closes on it.
const SERVICES: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "svc",
  predictableActionArguments: true,
  initial: "idle",
  states: {
    idle: { on: { SLOW: "slow", FAIL: "failing", HANG: "hanging" } },
    slow: {
      invoke: {
        src: () => new Promise((resolve) => setTimeout(() => resolve(1), 1500)),
        onDone: "idle",
      },
    },
    failing: {
      invoke: {
        src: () => Promise.reject(new Error("no")),
        onError: "idle",
      },
    },
    hanging: {
      invoke: { src: () => new Promise(() => {}) },
      on: { BACK: "idle" },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// Deploys the effect machines; called once before the rounds.
pub async fn deploy_all(s: &TestServer) {
    deploy(s, "services", SERVICES).await;
    deploy(s, "timed", TIMED).await;
    deploy(s, "throws", THROWS).await;
    deploy(s, "parent", PARENT).await;
    deploy(s, "kid", KID).await;
}

/// One round of effect work, `round` keeping instance names apart.
pub async fn round(s: &TestServer, round: usize) {
    let timed = format!("t{round}");
    create(s, "timed", &timed).await;
    create(s, "throws", &format!("x{round}")).await;
    let stale = s
        .running()
        .registry()
        .fire_timer(key("timed", &timed), "no-such-timer".into(), 1)
        .await;
    assert!(
        stale.is_ok(),
        "a fire of a missing timer is harmless: {stale:?}"
    );
    let parent = format!("p{round}");
    create(s, "parent", &parent).await;
    assert_eq!(
        send_ok(s, "parent", &parent, json!({"type": "SPAWN"})).await,
        "waiting"
    );
    send_ok(s, "parent", &parent, json!({"type": "POKE"})).await;
    if round == 0 {
        // The child is created, greeted, and says hello back: a spawn and two sends.
        wait_for_state(s, "parent", &parent, &json!("greeted"), SETTLED).await;
    }
    wait_for_state(s, "timed", &timed, &json!("b"), SETTLED).await;
    let svc = format!("s{round}");
    create(s, "services", &svc).await;
    for (event, settled_in) in [("SLOW", "idle"), ("FAIL", "idle"), ("HANG", "hanging")] {
        assert_eq!(
            send_ok(s, "services", &svc, json!({ "type": event })).await,
            settled_in,
            "{event}"
        );
        if event == "HANG" {
            // The window closed on it; its error event is owed before the next event.
            send_ok(s, "services", &svc, json!({ "type": "BACK" })).await;
        }
    }
    // The throwing timer's five attempts, 50 ms apart, end in a drop.
    tokio::time::sleep(Duration::from_millis(400)).await;
}
