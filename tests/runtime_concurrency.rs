//! Many callers at once, and wasm never blocking the async reactor.

mod runtime_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_support::{config, init_input, toggle_code, within};
use serde_json::json;
use statewire::runtime::{Runtime, RuntimeError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_transitions_all_succeed() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(config(dir.path())).unwrap();

        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (rt, code) = (rt.clone(), code.clone());
                tokio::spawn(async move {
                    let mut step = rt.init(&code, &init_input(&format!("i{i}"))).await.unwrap();
                    for _ in 0..20 {
                        step = rt
                            .transition(&code, &step.snapshot, &json!({"type": "toggle"}))
                            .await
                            .unwrap();
                    }
                    step
                })
            })
            .collect();
        for task in tasks {
            let step = task.await.unwrap();
            // 20 toggles from `off` end in `off` after 10 more entries into it.
            assert_eq!(step.state, json!("off"));
            assert_eq!(step.public_context()["toggleCount"], 11);
        }
        let stats = rt.stats();
        assert_eq!(stats.calls, 64 * 21);
        assert_eq!(stats.templates_built, 1);
        assert!(
            stats.guests_created <= 2,
            "one warm guest per worker: {stats:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_reactor_keeps_ticking_while_a_call_loops_until_its_deadline() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let deadline = Duration::from_millis(500);
        let rt = Runtime::new(statewire::runtime::RuntimeConfig {
            call_deadline: deadline,
            ..config(dir.path())
        })
        .unwrap();
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        // This test runs on tokio's single-threaded flavor: if the call blocked the thread,
        // the interval could not tick at all while it runs.
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let spun = rt
            .transition(&code, &first.snapshot, &json!({"type": "spin"}))
            .await;
        ticker.abort();
        assert!(matches!(spun, Err(RuntimeError::Deadline(_))), "{spun:?}");
        let ticks = ticks.load(Ordering::Relaxed);
        assert!(
            ticks >= 20,
            "only {ticks} ticks of 10 ms during a 500 ms call"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_calls_are_served_while_one_worker_is_stuck() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(statewire::runtime::RuntimeConfig {
            call_deadline: Duration::from_secs(2),
            ..config(dir.path())
        })
        .unwrap();
        let first = rt.init(&code, &init_input("a")).await.unwrap();

        let started = Instant::now();
        let stuck = tokio::spawn({
            let (rt, code, snapshot) = (rt.clone(), code.clone(), first.snapshot.clone());
            async move {
                let r = rt
                    .transition(&code, &snapshot, &json!({"type": "spin"}))
                    .await;
                (r, started.elapsed())
            }
        });
        let mut step = first;
        for _ in 0..50 {
            step = rt
                .transition(&code, &step.snapshot, &json!({"type": "toggle"}))
                .await
                .unwrap();
        }
        let served_after = started.elapsed();
        let (spun, spun_after) = stuck.await.unwrap();
        assert!(matches!(spun, Err(RuntimeError::Deadline(_))), "{spun:?}");
        assert!(
            served_after < spun_after,
            "50 toggles took {served_after:?}, the stuck call ended after {spun_after:?}"
        );
        assert_eq!(step.public_context()["toggleCount"], 26);
    })
    .await;
}
