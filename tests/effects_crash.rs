//! Timers across crashes and restarts: the real `statewire serve` binary is killed with
//! SIGKILL while a timer is armed (or between two failed attempts) and started again on the
//! same embedded data directory; and a clean restart replays no effect of the last step.

mod effects_support;
mod http_support;
mod process_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use effects_support::machines::{COUNTED, THROWS, TIMED, TIMED_AFTER};
use effects_support::{deployed_on_disk, send_ok, state_of, stored, LATE_MS};
use http_support::{machines, within, Client, TestServer};
use parking_lot::Mutex;
use process_support::{Serve, Served};
use serde_json::{json, Value};
use statewire::clock::now_ms;
use statewire::config::{Config, StoreKind};
use statewire::ids::InstanceKey;
use statewire::registry::CommitListener;
use statewire::server::Extensions;
use statewire::store::InstanceRecord;

fn embedded(c: &mut Config) {
    c.store.kind = StoreKind::Embedded;
}

fn serve(dir: &Path, log: &Path, retry_ms: u64) -> Served {
    let mut serve = Serve::embedded(dir);
    serve.env = vec![
        ("STATEWIRE_EFFECTS_RETRY_INTERVAL_MS", retry_ms.to_string()),
        ("STATEWIRE_LOG", "statewire=info".to_owned()),
    ];
    serve.start(log)
}

/// Kills the server `kill_at_ms` after creating an instance of [`TIMED`], restarts it
/// `restart_after_ms` later, and checks the timer was delivered once: never before its due
/// time, and within [`LATE_MS`] of the later of its due time and the restarted server being
/// ready.
async fn timer_survives_sigkill(restart_after_ms: u64) {
    let (dir, admin) = deployed_on_disk("timed", TIMED).await;
    let logs = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &logs.path().join("first.log"), 50);
    let r = Client::new(first.addr)
        .authed(&admin)
        .post("/machines/timed", &json!({"slug": "k"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.kill_async().await;

    tokio::time::sleep(Duration::from_millis(restart_after_ms)).await;
    let second = serve(dir.path(), &logs.path().join("second.log"), 50);
    let ready_ms = now_ms();
    let client = Client::new(second.addr);
    let started = Instant::now();
    while state_of(&client, &admin, "timed", "k").await != json!("b") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    second.kill_async().await;

    let (record, history) = stored(dir.path(), "timed", "k").await;
    assert_eq!(history.len(), 1, "one delivery: {history:?}");
    assert_eq!(history[0].event, json!({ "type": TIMED_AFTER }));
    assert!(record.effects.is_empty(), "{:?}", record.effects);
    let due = record.created_at_ms + 300;
    let fired = history[0].created_at_ms;
    assert!(fired >= due, "delivered {}ms early", due - fired);
    let deadline = due.max(ready_ms) + LATE_MS;
    println!(
        "due {}ms after the restart; delivered {}ms after the later of due and restart",
        due - ready_ms,
        fired - due.max(ready_ms)
    );
    assert!(fired <= deadline, "delivered {}ms late", fired - deadline);
}

#[tokio::test]
async fn a_timer_armed_before_sigkill_fires_on_time_after_a_quick_restart() {
    within(180, timer_survives_sigkill(50)).await;
}

#[tokio::test]
async fn an_overdue_timer_fires_as_soon_as_the_server_is_back() {
    within(180, timer_survives_sigkill(900)).await;
}

/// The attempt numbers of the failed (and the dropped) deliveries in a server log.
fn attempts_logged(log: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains("timer delivery failed") || l.contains("timer dropped"))
        .filter_map(|l| {
            let tail = l.split("attempts=").nth(1)?;
            tail.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test]
async fn attempts_counted_before_sigkill_still_total_five() {
    within(180, async {
        let (dir, admin) = deployed_on_disk("throws", THROWS).await;
        let logs = tempfile::tempdir().unwrap();
        // Attempts 300 ms apart leave room to kill the server between the second and third.
        let first = serve(dir.path(), &logs.path().join("first.log"), 300);
        let r = Client::new(first.addr)
            .authed(&admin)
            .post("/machines/throws", &json!({"slug": "t"}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let started = Instant::now();
        while attempts_logged(&first.log()).len() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{}",
                first.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = attempts_logged(&first.log());
        first.kill_async().await;
        assert_eq!(before, [1, 2]);

        let second = serve(dir.path(), &logs.path().join("second.log"), 300);
        let started = Instant::now();
        while !second.log().contains("timer dropped") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{}",
                second.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = attempts_logged(&second.log());
        second.kill_async().await;
        assert_eq!(
            after,
            [3, 4, 5],
            "the count went on from the stored attempts"
        );

        let (record, history) = stored(dir.path(), "throws", "t").await;
        assert_eq!(record.state, json!("a"));
        assert!(history.is_empty());
        assert!(record.effects.is_empty(), "{:?}", record.effects);
    })
    .await;
}

/// Keeps the effect lists of every commit it hears of.
#[derive(Default)]
struct Recorder {
    commits: Mutex<Vec<Vec<Value>>>,
}

impl CommitListener for Recorder {
    fn on_commit(&self, _key: &InstanceKey, _record: &Arc<InstanceRecord>, effects: &[Value]) {
        self.commits.lock().push(effects.to_vec());
    }
}

impl Recorder {
    /// How many `exec` effects of the named action `count` were committed.
    fn counts(&self) -> usize {
        let commits = self.commits.lock();
        let execs = commits.iter().flatten();
        execs
            .filter(|e| e["type"] == "exec" && e["action"] == "count")
            .count()
    }
}

fn recording() -> (Arc<Recorder>, Extensions) {
    let recorder = Arc::new(Recorder::default());
    let ext = Extensions {
        listeners: vec![recorder.clone()],
        ..Extensions::default()
    };
    (recorder, ext)
}

#[tokio::test]
async fn a_restart_replays_no_effect_of_the_last_step() {
    within(180, async {
        let (recorder, ext) = recording();
        let s = TestServer::start_with(embedded, ext).await;
        machines::machine_with_version(&s, "counted", COUNTED.as_bytes()).await;
        effects_support::create(&s, "counted", "c").await;
        assert_eq!(
            send_ok(&s, "counted", "c", json!({"type": "TOGGLE"})).await,
            "a"
        );
        assert_eq!(
            recorder.counts(),
            1,
            "entering a left one `count` for the module"
        );
        let dir = s.shutdown().await;

        let (recorder, ext) = recording();
        let s = TestServer::start_in(dir, embedded, ext).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(recorder.commits.lock().is_empty(), "nothing ran at start");
        assert_eq!(
            send_ok(&s, "counted", "c", json!({"type": "TOGGLE"})).await,
            "b"
        );
        assert_eq!(recorder.counts(), 0, "leaving a counts nothing");
        assert_eq!(
            send_ok(&s, "counted", "c", json!({"type": "TOGGLE"})).await,
            "a"
        );
        assert_eq!(recorder.counts(), 1, "entering a again: exactly one more");
        assert_eq!(
            effects_support::context(&s, "counted", "c").await["entries"],
            2
        );
        s.shutdown().await;
    })
    .await;
}
