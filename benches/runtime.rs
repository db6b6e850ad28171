//! Machine runtime benchmarks: transitions per second per core, the cost of a fresh guest from
//! a template, and loading a compiled module from the artifact cache versus compiling it.
//!
//! Run with `cargo bench --bench runtime`. Every call goes through the public async API (job
//! queue, worker thread, oneshot reply), so the numbers include that hop.

#[path = "../tests/runtime_support/mod.rs"]
mod runtime_support;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use statewire::runtime::{MachineCode, Runtime, RuntimeConfig};

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

/// One caller, one worker: the latency of a transition, i.e. transitions/s on one core.
fn transitions_one_core(c: &mut Criterion) {
    let rt_tokio = tokio();
    let dir = tempfile::tempdir().unwrap();
    let code = raw_toggle();
    let mut group = c.benchmark_group("transition/one-core");
    group.throughput(Throughput::Elements(1));
    for (name, idle_guests) in [("raw-wasm-toggle", 2), ("raw-wasm-toggle-fresh-guest", 0)] {
        let rt = runtime_with(dir.path(), 1, idle_guests);
        let first = rt_tokio
            .block_on(rt.init(&code, &runtime_support::init_input("bench")))
            .unwrap();
        let toggle = json!({"type": "toggle"});
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                rt_tokio
                    .block_on(rt.transition(&code, &first.snapshot, &toggle))
                    .unwrap()
            })
        });
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
    let code = raw_toggle();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = runtime_with(dir.path(), workers, 2);
    let first = rt_tokio
        .block_on(rt.init(&code, &runtime_support::init_input("bench")))
        .unwrap();
    let callers = 32;
    let mut group = c.benchmark_group(format!("transition/{workers}-workers"));
    group.throughput(Throughput::Elements(callers));
    group.bench_function("raw-wasm-toggle", |b| {
        b.iter(|| {
            rt_tokio.block_on(async {
                let calls = (0..callers).map(|_| {
                    let (rt, code, snapshot) = (rt.clone(), code.clone(), first.snapshot.clone());
                    tokio::spawn(async move {
                        rt.transition(&code, &snapshot, &json!({"type": "toggle"}))
                            .await
                            .unwrap()
                    })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await.unwrap();
                }
            })
        })
    });
    group.finish();
}

/// A machine's first use in a process: with its compiled module in the cache on disk, and
/// with an empty cache (Cranelift compile). Both include building the template.
fn first_use(c: &mut Criterion) {
    let rt_tokio = tokio();
    let code = raw_toggle();
    let warm_dir = tempfile::tempdir().unwrap();
    rt_tokio
        .block_on(runtime_with(warm_dir.path(), 1, 2).check(&code))
        .unwrap();

    let mut group = c.benchmark_group("first-use");
    group.sample_size(20);
    group.bench_function("raw-wasm-toggle/cached-artifact", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rt = runtime_with(warm_dir.path(), 1, 2);
                let started = Instant::now();
                rt_tokio.block_on(rt.check(&code)).unwrap();
                total += started.elapsed();
                assert_eq!(rt.stats().artifacts_loaded, 1);
            }
            total
        })
    });
    group.bench_function("raw-wasm-toggle/compile", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cold_dir = tempfile::tempdir().unwrap();
                let rt = runtime_with(cold_dir.path(), 1, 2);
                let started = Instant::now();
                rt_tokio.block_on(rt.check(&code)).unwrap();
                total += started.elapsed();
                assert_eq!(rt.stats().artifacts_compiled, 1);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    transitions_one_core,
    transitions_all_cores,
    first_use
);
criterion_main!(benches);
