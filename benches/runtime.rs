//! Machine runtime benchmarks: transitions per second per core for a toggle and a machine with
//! nested and parallel states (XState 4 and 5 bundles, and the raw-wasm toggle as a baseline),
//! the cost of a fresh guest from a template, and a machine's first use with its compiled
//! module in the artifact cache versus compiling it; and the effect loop of machine ABI
//! version 2 on a pinned guest.
//!
//! Run with `cargo bench --bench runtime`. Every call goes through the public async API (job
//! queue, worker thread, oneshot reply), so the numbers include that hop.

#[path = "../tests/runtime_support/mod.rs"]
mod runtime_support;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use statewire::runtime::{HostOp, MachineCode, Runtime, RuntimeConfig};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn runtime_with(dir: &Path, workers: usize, idle_guests: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: dir.to_path_buf(),
        call_deadline: Duration::from_secs(10),
        workers,
        idle_guests_per_machine: idle_guests,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn raw_toggle() -> MachineCode {
    MachineCode::new(runtime_support::toggle_wasm(), 10_000_000).unwrap()
}

fn js(name: &str) -> MachineCode {
    MachineCode::new(runtime_support::js_bundle(name), 10_000_000).unwrap()
}

/// A machine and one transition to repeat: from a fixed snapshot, the same event.
struct Case {
    name: &'static str,
    code: MachineCode,
    snapshot: String,
    event: Value,
}

/// The toggle (raw wasm, XState 4, XState 5) from `off`, and the order with parallel regions
/// (XState 4, 5) paying while in `review`.
fn cases(rt_tokio: &tokio::runtime::Runtime, rt: &Runtime) -> Vec<Case> {
    let machines: [(&str, MachineCode, &[&str], &str); 5] = [
        ("raw-wasm-toggle", raw_toggle(), &[], "toggle"),
        ("toggle-v4", js("toggle-v4"), &[], "toggle"),
        ("toggle-v5", js("toggle-v5"), &[], "toggle"),
        ("order-v4", js("order-v4"), &["add", "submit"], "pay"),
        ("order-v5", js("order-v5"), &["add", "submit"], "pay"),
    ];
    machines
        .into_iter()
        .map(|(name, code, path, event)| {
            let snapshot = rt_tokio.block_on(async {
                let input = runtime_support::init_input("bench");
                let mut step = rt.init(&code, &input).await.unwrap();
                for event in path {
                    let event = json!({"type": event});
                    step = rt.transition(&code, &step.snapshot, &event).await.unwrap();
                }
                step.snapshot
            });
            Case {
                name,
                code,
                snapshot,
                event: json!({"type": event}),
            }
        })
        .collect()
}

/// One caller, one worker: the latency of a transition, i.e. transitions/s on one core.
/// The `fresh-guest` variants keep no idle guest, so each call also makes a guest from the
/// template: the difference is the cost of a new guest.
fn transitions_one_core(c: &mut Criterion) {
    let rt_tokio = tokio();
    let dir = tempfile::tempdir().unwrap();
    let warm = runtime_with(dir.path(), 1, 2);
    let fresh = runtime_with(dir.path(), 1, 0);
    let cases = cases(&rt_tokio, &warm);
    let mut group = c.benchmark_group("transition/one-core");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        for (variant, rt) in [("", &warm), ("/fresh-guest", &fresh)] {
            let id = BenchmarkId::from_parameter(format!("{}{variant}", case.name));
            group.bench_function(id, |b| {
                b.iter(|| {
                    rt_tokio
                        .block_on(rt.transition(&case.code, &case.snapshot, &case.event))
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// Many callers, one worker per core: aggregate transitions/s.
fn transitions_all_cores(c: &mut Criterion) {
    let rt_tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = runtime_with(dir.path(), workers, 2);
    let cases = cases(&rt_tokio, &rt);
    let callers = 32;
    let mut group = c.benchmark_group(format!("transition/{workers}-workers"));
    group.throughput(Throughput::Elements(callers));
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| {
                rt_tokio.block_on(async {
                    let calls: Vec<_> = (0..callers)
                        .map(|_| {
                            let (rt, code) = (rt.clone(), case.code.clone());
                            let (snapshot, event) = (case.snapshot.clone(), case.event.clone());
                            tokio::spawn(async move {
                                rt.transition(&code, &snapshot, &event).await.unwrap()
                            })
                        })
                        .collect();
                    for call in calls {
                        call.await.unwrap();
                    }
                })
            })
        });
    }
    group.finish();
}

/// A machine's first use in a process, `check` included (it builds the template): with the
/// compiled module in the cache on disk, and with an empty cache (Cranelift compile).
fn first_use(c: &mut Criterion) {
    let rt_tokio = tokio();
    let machines = [
        ("raw-wasm-toggle", raw_toggle()),
        ("toggle-v4", js("toggle-v4")),
    ];
    let warm_dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("first-use");
    group.sample_size(10);
    for (name, code) in &machines {
        rt_tokio
            .block_on(runtime_with(warm_dir.path(), 1, 2).check(code))
            .unwrap();
        group.bench_function(format!("{name}/cached-artifact"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rt = runtime_with(warm_dir.path(), 1, 2);
                    let started = Instant::now();
                    rt_tokio.block_on(rt.check(code)).unwrap();
                    total += started.elapsed();
                    assert_eq!(rt.stats().artifacts_loaded, 1);
                }
                total
            })
        });
        group.bench_function(format!("{name}/compile"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let cold_dir = tempfile::tempdir().unwrap();
                    let rt = runtime_with(cold_dir.path(), 1, 2);
                    let started = Instant::now();
                    rt_tokio.block_on(rt.check(code)).unwrap();
                    total += started.elapsed();
                    assert_eq!(rt.stats().artifacts_compiled, 1);
                }
                total
            })
        });
    }
    group.finish();
}

/// One caller, one worker: a step that invokes a fetching service on a pooled guest, which
/// pins it; `run_effects`; `complete_op` with the response; the step on `done.invoke`; and the
/// release of the guest. Also the first step alone (`pin`: the pooled step plus the pin and
/// release, with the guest's replacement copied from the template on the next call).
fn pinned_effects(c: &mut Criterion) {
    let rt_tokio = tokio();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(dir.path(), 1, 2);
    let code = js("effects-v4");
    let idle = rt_tokio
        .block_on(rt.init(&code, &runtime_support::init_input("bench")))
        .unwrap();
    let load = json!({"type": "LOAD", "id": 7});
    let response = json!({"ok": true, "status": 200, "headers": {}, "body": "{\"id\":7}"});
    let mut group = c.benchmark_group("pinned/one-core");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pin", |b| {
        b.iter(|| {
            let (step, pinned) = rt_tokio
                .block_on(rt.transition_pinned(&code, &idle.snapshot, &load))
                .unwrap();
            assert!(step.token.is_some() && pinned.is_some());
        })
    });
    group.bench_function("effect-loop", |b| {
        b.iter(|| {
            rt_tokio.block_on(async {
                let (loading, pinned) = rt
                    .transition_pinned(&code, &idle.snapshot, &load)
                    .await
                    .unwrap();
                let mut pinned = pinned.unwrap();
                let outbox = pinned.run_effects(loading.token.unwrap()).await.unwrap();
                let Some(HostOp::Fetch { op_id, .. }) = outbox.ops.first() else {
                    panic!("the service fetches: {outbox:?}");
                };
                let done = pinned.complete_op(*op_id, response.clone()).await.unwrap();
                let loaded = pinned
                    .transition(&loading.snapshot, &done.events[0])
                    .await
                    .unwrap();
                assert_eq!(loaded.state, json!("loaded"));
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    transitions_one_core,
    transitions_all_cores,
    first_use,
    pinned_effects
);
criterion_main!(benches);
