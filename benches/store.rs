//! Durable compare-and-set throughput of the embedded store, beside the cost of the disk.
//!
//! Prints one table. Each round measures, back to back so all see the same disk:
//! - `append+fdatasync`: a plain loop appending one record to a file and syncing per record,
//!   the ceiling for any design that syncs once per event;
//! - `overwrite+fdatasync`: the same into a preallocated file, so the sync has no file size
//!   to record (redb also writes into space it has already allocated);
//! - `store, 1 writer`: one task doing one commit after another;
//! - `store, 64 writers`: 64 tasks, each on its own instance, committing concurrently, which
//!   the writer thread groups into shared commits;
//! - `… + wake`: the same, with every commit carrying a timer and a new wake time, so each one
//!   also moves the instance's wake-up index entry.
//!
//! It also measures point reads of an instance inline and through `spawn_blocking`, the two
//! ways a read could run, listings of one page of 64 instances, and wake-up index scans: the
//! first 256 due entries of 10,000, and a walk over all of them in pages of 256.
//!
//! `STATEWIRE_BENCH_SECS` sets seconds per scenario (default 2), `STATEWIRE_BENCH_ROUNDS` the
//! rounds (default 3); the table shows the median round.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::store::embedded::EmbeddedStore;
use statewire::store::{
    CasOutcome, Commit, EffectState, Expect, InstanceRecord, InstanceStatus, PageRequest, Store,
    TimerRecord, TransitionRecord,
};

const SNAPSHOT_BYTES: usize = 1024;
/// Instances with a wake time for the index scans.
const INDEXED_INSTANCES: usize = 10_000;
/// Entries per scan.
const SCAN_LIMIT: usize = 256;

struct Run {
    ops: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    commits: Option<u64>,
}

impl Run {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: usize) -> InstanceKey {
    InstanceKey::new(
        MachineName::parse("bench").unwrap(),
        InstanceName::parse(format!("i{i}")).unwrap(),
    )
}

/// A timer and a wake time that moves with every version.
fn effects(i: usize, version: u64) -> EffectState {
    let due_at_ms = 1_000_000 + (version as i64) * 100 + i as i64;
    let mut e = EffectState {
        wake_at_ms: Some(due_at_ms),
        ..EffectState::default()
    };
    e.arm_timer(TimerRecord {
        id: "xstate.after(1000)#bench.a".to_owned(),
        seq: version,
        due_at_ms,
        event: serde_json::json!({ "type": "xstate.after(1000)#bench.a" }),
        target: None,
        attempts: 0,
        next_attempt_at_ms: None,
    });
    e
}

fn commit(i: usize, version: u64) -> Commit {
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
            snapshot: "s".repeat(SNAPSHOT_BYTES),
            state: serde_json::json!({ "v": version }),
            context: serde_json::json!({ "n": version }),
            tags: vec![],
            done: false,
            write_id: uuid::Uuid::new_v4(),
            created_at_ms: 0,
            updated_at_ms: version as i64,
            effects: Default::default(),
        },
        transition: Some(TransitionRecord {
            version,
            created_at_ms: version as i64,
            event: serde_json::json!({ "type": "bump", "pad": "e".repeat(256) }),
            state: serde_json::json!({ "v": version }),
        }),
    }
}

/// Appends a record of the same size as a commit and `fdatasync`s after each one.
fn append_and_sync(dir: &Path, duration: Duration) -> Run {
    let path = dir.join("baseline.log");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let record = vec![b'r'; SNAPSHOT_BYTES + 512];
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
        latencies_us.push(t.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(path).unwrap();
    Run {
        ops: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        commits: None,
    }
}

/// Rewrites records in place in a preallocated file and `fdatasync`s after each one.
fn overwrite_and_sync(dir: &Path, duration: Duration) -> Run {
    use std::os::unix::fs::FileExt;
    const SLOTS: u64 = 4096;
    let path = dir.join("baseline.dat");
    let record = vec![b'r'; SNAPSHOT_BYTES + 512];
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    for slot in 0..SLOTS {
        file.write_all_at(&record, slot * record.len() as u64)
            .unwrap();
    }
    file.sync_all().unwrap();
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    let mut slot = 0;
    while started.elapsed() < duration {
        let t = Instant::now();
        file.write_all_at(&record, slot * record.len() as u64)
            .unwrap();
        file.sync_data().unwrap();
        latencies_us.push(t.elapsed().as_micros() as u64);
        slot = (slot + 1) % SLOTS;
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(path).unwrap();
    Run {
        ops: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        commits: None,
    }
}

/// `writers` tasks, each committing to its own instance one event after another, with a
/// moving wake time when `wake` is set.
async fn store_writers(dir: &Path, writers: usize, wake: bool, duration: Duration) -> Run {
    let store = Arc::new(EmbeddedStore::open(dir).unwrap());
    let before = store.stats();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let stored = store.load_instance(&key(i)).await.unwrap();
                let mut version = stored.map_or(0, |r| r.version);
                let mut latencies_us = Vec::new();
                while started.elapsed() < duration {
                    version += 1;
                    let mut c = commit(i, version);
                    if wake {
                        c.next.effects = effects(i, version);
                    }
                    let t = Instant::now();
                    let outcome = store.commit(c).await.unwrap();
                    latencies_us.push(t.elapsed().as_micros() as u64);
                    assert_eq!(outcome, CasOutcome::Applied { version });
                }
                latencies_us
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let after = store.stats();
    store.shutdown().await.unwrap();
    Run {
        ops: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        commits: Some(after.commits - before.commits),
    }
}

/// Point reads of existing instances, inline or through `spawn_blocking`.
async fn point_reads(dir: &Path, blocking: bool, duration: Duration) -> Run {
    let store = Arc::new(EmbeddedStore::open(dir).unwrap());
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < duration {
        let k = key(i % 64);
        i += 1;
        let t = Instant::now();
        let found = if blocking {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || {
                futures_util::FutureExt::now_or_never(store.load_instance(&k))
                    .expect("embedded reads complete without waiting")
            })
            .await
            .unwrap()
        } else {
            store.load_instance(&k).await
        };
        latencies_us.push(t.elapsed().as_micros() as u64);
        assert!(found.unwrap().is_some());
    }
    Run {
        ops: latencies_us.len() as u64,
        elapsed: started.elapsed(),
        latencies_us,
        commits: None,
    }
}

/// Pages of 64 instance summaries.
async fn list_pages(dir: &Path, duration: Duration) -> Run {
    let store = EmbeddedStore::open(dir).unwrap();
    let machine = MachineName::parse("bench").unwrap();
    let page = PageRequest {
        cursor: None,
        limit: 64,
    };
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        let listed = store.list_instances(&machine, &page).await.unwrap();
        latencies_us.push(t.elapsed().as_micros() as u64);
        assert_eq!(listed.items.len(), 64);
    }
    Run {
        ops: latencies_us.len() as u64,
        elapsed: started.elapsed(),
        latencies_us,
        commits: None,
    }
}

/// Writes [`INDEXED_INSTANCES`] instances with wake times, unless they are there already.
async fn seed_wakeups(store: &EmbeddedStore) {
    let machine = MachineName::parse("wake").unwrap();
    let first = InstanceKey::new(machine.clone(), InstanceName::parse("w0").unwrap());
    if store.load_instance(&first).await.unwrap().is_some() {
        return;
    }
    let commits = (0..INDEXED_INSTANCES).map(|i| {
        let mut c = commit(i, 1);
        c.key = InstanceKey::new(
            machine.clone(),
            InstanceName::parse(format!("w{i}")).unwrap(),
        );
        c.next.effects = effects(i, 1 + (i % 97) as u64);
        store.commit(c)
    });
    for outcome in futures_util::future::join_all(commits).await {
        assert_eq!(outcome.unwrap(), CasOutcome::Applied { version: 1 });
    }
}

/// The first [`SCAN_LIMIT`] due entries, or (`walk`) every entry in pages of that size.
async fn wakeup_scans(dir: &Path, walk: bool, duration: Duration) -> Run {
    let store = EmbeddedStore::open(dir).unwrap();
    seed_wakeups(&store).await;
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        let mut seen = 0;
        let mut page = store.due_wakeups(i64::MAX, SCAN_LIMIT).await.unwrap();
        seen += page.len();
        while walk && page.len() == SCAN_LIMIT {
            page = store
                .wakeups_after(page.last(), i64::MAX, SCAN_LIMIT)
                .await
                .unwrap();
            seen += page.len();
        }
        latencies_us.push(t.elapsed().as_micros() as u64);
        assert!(seen >= if walk { INDEXED_INSTANCES } else { SCAN_LIMIT });
    }
    Run {
        ops: latencies_us.len() as u64,
        elapsed: started.elapsed(),
        latencies_us,
        commits: None,
    }
}

fn median_by_throughput(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.ops_per_s().total_cmp(&b.ops_per_s()));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

fn row(name: &str, mut run: Run, rounds: &[f64]) {
    let per_commit = run.commits.map_or("-".to_owned(), |c| {
        format!("{:.1}", run.ops as f64 / c.max(1) as f64)
    });
    let all: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{name:<24} {:>10.0} {:>8.3} {:>8.3} {:>10}   [{}]",
        run.ops_per_s(),
        run.percentile_ms(0.5),
        run.percentile_ms(0.99),
        per_commit,
        all.join(", ")
    );
}

fn main() {
    let secs = env_or("STATEWIRE_BENCH_SECS", 2);
    let rounds = env_or("STATEWIRE_BENCH_ROUNDS", 3) as usize;
    let duration = Duration::from_secs(secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("statewire-bench")
        .tempdir()
        .unwrap();

    let (mut baseline, mut in_place) = (Vec::new(), Vec::new());
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let (mut one_wake, mut many_wake) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        baseline.push(append_and_sync(dir.path(), duration));
        in_place.push(overwrite_and_sync(dir.path(), duration));
        one.push(runtime.block_on(store_writers(dir.path(), 1, false, duration)));
        many.push(runtime.block_on(store_writers(dir.path(), 64, false, duration)));
        one_wake.push(runtime.block_on(store_writers(dir.path(), 1, true, duration)));
        many_wake.push(runtime.block_on(store_writers(dir.path(), 64, true, duration)));
    }
    let reads_inline = runtime.block_on(point_reads(dir.path(), false, duration));
    let reads_blocking = runtime.block_on(point_reads(dir.path(), true, duration));
    let lists = runtime.block_on(list_pages(dir.path(), duration));
    let first_due = runtime.block_on(wakeup_scans(dir.path(), false, duration));
    let walks = runtime.block_on(wakeup_scans(dir.path(), true, duration));

    println!(
        "\n{:<24} {:>10} {:>8} {:>8} {:>10}   per round",
        "scenario", "ops/s", "p50 ms", "p99 ms", "ops/commit"
    );
    for (name, runs) in [
        ("append+fdatasync", baseline),
        ("overwrite+fdatasync", in_place),
        ("store, 1 writer", one),
        ("store, 64 writers", many),
        ("store, 1 writer + wake", one_wake),
        ("store, 64 writers + wake", many_wake),
    ] {
        let per_round: Vec<f64> = runs.iter().map(Run::ops_per_s).collect();
        row(name, median_by_throughput(runs), &per_round);
    }
    for (name, run) in [
        ("read, inline", reads_inline),
        ("read, spawn_blocking", reads_blocking),
        ("list 64 instances", lists),
        ("first 256 due of 10k", first_due),
        ("walk 10k due, pages 256", walks),
    ] {
        let r = run.ops_per_s();
        row(name, run, &[r]);
    }
}
