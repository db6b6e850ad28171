//! Kill -9 in the middle of durable writes loses nothing that was acknowledged.
//!
//! The parent test re-runs this test binary as a child (the ignored test below, selected with
//! an environment variable naming the data directory). The child writes compare-and-sets on a
//! few instances as fast as it can and prints each acknowledged version. Every write carries
//! effect state that depends on its version, including a wake time that moves, disappears and
//! comes back. The parent kills the child at a random moment, reopens the store, and checks
//! every instance against what was printed, and the wake-up index against the rows: exactly
//! one entry per row with a wake time, and nothing else. This covers a process crash; power
//! loss cannot be simulated here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::embedded::EmbeddedStore;
use statewire::store::{
    CasOutcome, Commit, EffectState, Expect, InstanceRecord, InstanceStatus, OutboxKind,
    OutboxMessage, PageRequest, Store, TimerRecord, TransitionRecord, Wakeup,
};

const DIR_ENV: &str = "STATEWIRE_CRASH_DIR";
const KEYS: usize = 8;
const ROUNDS: usize = 8;
/// The child stops on its own after this long, in case its parent is gone.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn key(i: usize) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("crash").unwrap(),
        InstanceName::parse(format!("k{i}")).unwrap(),
    )
}

/// The wake time of instance `i` at `version`: moving later and earlier, none every fourth.
fn wake_for(i: usize, version: u64) -> Option<i64> {
    let v = version as i64;
    match version % 4 {
        0 => None,
        1 => Some(1_000_000 * i as i64 + 10 * v),
        2 => Some(1_000_000 * i as i64 + 10 * v + 500),
        _ => Some(1_000_000 * i as i64 + 10 * v - 500),
    }
}

/// The effect state instance `i` has at `version`.
fn effects_for(i: usize, version: u64) -> EffectState {
    let mut e = EffectState {
        wake_at_ms: wake_for(i, version),
        ..EffectState::default()
    };
    e.arm_timer(TimerRecord {
        id: format!("t{i}"),
        seq: version,
        due_at_ms: 10 * version as i64,
        event: serde_json::json!({ "type": "tick", "v": version }),
        target: None,
        attempts: (version % 5) as u32,
        next_attempt_at_ms: None,
    });
    if version.is_multiple_of(2) {
        e.queue(OutboxMessage {
            id: format!("{version}:0"),
            to: serde_json::json!({ "kind": "parent" }),
            event: serde_json::json!({ "type": "HELLO" }),
            attempts: 0,
            next_attempt_at_ms: None,
            kind: OutboxKind::Send,
        });
    }
    e.record_received(&format!("crash/k{i}#{version}:0"));
    e
}

fn commit_for(i: usize, version: u64) -> Commit {
    let expect = match version {
        1 => Expect::Absent,
        v => Expect::Version(v - 1),
    };
    Commit {
        key: key(i),
        expect,
        next: InstanceRecord {
            machine_version: MachineVersionId::generate(),
            desired_machine_version: None,
            status: InstanceStatus::Running,
            version,
            ts_ms: version as i64,
            snapshot: format!("{{\"v\":{version},\"pad\":\"{}\"}}", "x".repeat(512)),
            state: serde_json::json!({ "v": version }),
            context: serde_json::json!({}),
            tags: vec![],
            done: false,
            write_id: uuid::Uuid::new_v4(),
            created_at_ms: 0,
            updated_at_ms: version as i64,
            effects: effects_for(i, version),
        },
        transition: Some(TransitionRecord {
            version,
            created_at_ms: version as i64,
            event: serde_json::json!({ "type": "bump", "key": i }),
            state: serde_json::json!({ "v": version }),
        }),
    }
}

/// The child side: runs only when the parent sets the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by kill_9_loses_no_acknowledged_write as its child process"]
async fn crash_child_writes_until_killed() {
    let dir = std::env::var(DIR_ENV).expect("run by kill_9_loses_no_acknowledged_write");
    let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
    // The test harness has printed "test … " without a newline; start a fresh line.
    println!("\nready");
    std::io::stdout().flush().unwrap();
    let mut tasks = Vec::new();
    for i in 0..KEYS {
        let store = Arc::clone(&store);
        let stored = store.load_instance(&key(i)).await.unwrap();
        let mut version = stored.map_or(0, |r| r.version);
        tasks.push(tokio::spawn(async move {
            loop {
                version += 1;
                let outcome = store.commit(commit_for(i, version)).await.unwrap();
                assert_eq!(outcome, CasOutcome::Applied { version }, "key {i}");
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {i} {version}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    let _ = tokio::time::timeout(CHILD_LIFETIME, futures_util::future::join_all(tasks)).await;
}

/// Runs one child until a random moment, kills it, and returns the acknowledged versions.
fn run_child_and_kill(dir: &Path) -> Vec<(usize, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(READY_TIMEOUT)
            .expect("child reports ready");
        let ready = line == "ready";
        lines.push(line);
        if ready {
            break;
        }
    }
    let delay_ms = rand::rng().random_range(100..900);
    std::thread::sleep(Duration::from_millis(delay_ms));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(lines_rx.try_iter());
    lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("ack ")?.split(' ');
            let i = parts.next()?.parse().ok()?;
            let v = parts.next()?.parse().ok()?;
            Some((i, v))
        })
        .collect()
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked: HashMap<usize, u64> = HashMap::new();
    let mut total_acks = 0;
    for round in 0..ROUNDS {
        let acks = run_child_and_kill(dir.path());
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged writes"
        );
        total_acks += acks.len();
        for (i, v) in acks {
            let last = acked.entry(i).or_default();
            *last = (*last).max(v);
        }
        let check = async {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            for (&i, &last) in &acked {
                let stored = store.load_instance(&key(i)).await.unwrap();
                let stored = stored.expect("an acknowledged instance exists");
                assert!(
                    stored.version == last || stored.version == last + 1,
                    "round {round}, key {i}: acknowledged {last}, stored {}",
                    stored.version
                );
                assert_eq!(stored.state, serde_json::json!({ "v": stored.version }));
                assert_eq!(
                    stored.effects,
                    effects_for(i, stored.version),
                    "round {round}, key {i}: effect state of its version"
                );
                let history = store
                    .list_transitions(&key(i), &PageRequest::default())
                    .await
                    .unwrap();
                let mut expected = stored.version;
                let mut cursor = history.cursor;
                let mut items = history.items;
                loop {
                    for t in &items {
                        assert_eq!(t.version, expected, "round {round}, key {i}: no gaps");
                        assert_eq!(t.state, serde_json::json!({ "v": expected }));
                        expected -= 1;
                    }
                    let Some(c) = cursor else { break };
                    let next = PageRequest {
                        cursor: Some(c),
                        limit: 0,
                    };
                    let page = store.list_transitions(&key(i), &next).await.unwrap();
                    cursor = page.cursor;
                    items = page.items;
                }
                assert_eq!(expected, 0, "round {round}, key {i}: history down to 1");
            }
            let mut rows_want = Vec::new();
            for i in 0..KEYS {
                let row = store.load_instance(&key(i)).await.unwrap();
                if let Some(wake_at_ms) = row.and_then(|r| r.effects.wake_at_ms) {
                    rows_want.push(Wakeup {
                        wake_at_ms,
                        key: key(i),
                    });
                }
            }
            rows_want.sort();
            let index = store.due_wakeups(i64::MAX, usize::MAX).await.unwrap();
            assert_eq!(
                index, rows_want,
                "round {round}: one index entry per row with a wake time, nothing else"
            );
        };
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), check)
                .await
                .expect("check finishes in time")
        });
    }
    println!("{total_acks} acknowledged writes over {ROUNDS} kills, none lost");
}
