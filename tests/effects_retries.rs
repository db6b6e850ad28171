//! Failed timer deliveries: each failure is an attempt, counted in the instance's row by a
//! write that is not a transition; after the fifth the timer is dropped. A paused instance
//! refuses its timers the same way, and resuming replays nothing.

mod effects_support;
mod http_support;

use std::time::{Duration, Instant};

use effects_support::machines::{THROWS, TIMED};
use effects_support::{
    create, deploy, effects, history, key, record, server, server_with, state, RETRY_MS,
};
use http_support::within;
use serde_json::json;
use statewire::registry::TimerFire;
use statewire::server::Extensions;

#[tokio::test]
async fn a_timer_whose_guard_throws_is_tried_five_times_then_dropped() {
    within(120, async {
        let manual = Extensions {
            manual_timers: true,
            ..Extensions::default()
        };
        let s = server_with(|_| {}, manual).await;
        deploy(&s, "throws", THROWS).await;
        create(&s, "throws", "t").await;
        let created = record(s.store().as_ref(), "throws", "t").await;
        let timer = created.effects.timers[0].clone();
        let registry = s.running().registry();

        for attempt in 1..=5u32 {
            let before = effects(s.store().as_ref(), "throws", "t").await;
            let ready = before.timers[0].ready_at_ms();
            let wait = ready - statewire::clock::now_ms();
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0) + 2)).await;
            let fire = registry
                .fire_timer(key("throws", "t"), timer.id.clone(), timer.seq)
                .await
                .unwrap();
            let TimerFire::Failed {
                attempts, dropped, ..
            } = fire
            else {
                panic!("attempt {attempt}: {fire:?}");
            };
            assert_eq!((attempts, dropped), (attempt, attempt == 5));
            let after = record(s.store().as_ref(), "throws", "t").await;
            if attempt < 5 {
                let t = &after.effects.timers[0];
                assert_eq!(t.attempts, attempt);
                let next = t.next_attempt_at_ms.unwrap();
                assert!(next - statewire::clock::now_ms() <= RETRY_MS as i64);
                assert_eq!(after.effects.wake_at_ms, Some(next));
            }
            assert_eq!(after.ts_ms, created.ts_ms, "an attempt is not a transition");
            assert_eq!(after.version, created.version + u64::from(attempt));
        }
        let after = record(s.store().as_ref(), "throws", "t").await;
        assert!(after.effects.is_empty(), "{:?}", after.effects);
        assert_eq!(after.state, json!("a"));
        assert!(history(&s, "throws", "t").await.is_empty());
        let gone = registry
            .fire_timer(key("throws", "t"), timer.id.clone(), timer.seq)
            .await
            .unwrap();
        assert_eq!(gone, TimerFire::Stale);
        s.shutdown().await;
    })
    .await;
}

/// The value of one series in the Prometheus text, 0 when absent.
fn series(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_scheduler_spaces_attempts_by_the_retry_interval() {
    within(120, async {
        let exporter = statewire::metrics::install().expect("the recorder installs");
        let dropped = r#"statewire_effects_dropped_total{kind="timer"}"#;
        let failed = r#"statewire_effect_delivery_failures_total{kind="timer"}"#;
        let before = exporter.render();
        let s = server().await;
        deploy(&s, "throws", THROWS).await;
        create(&s, "throws", "auto").await;
        let created = record(s.store().as_ref(), "throws", "auto").await;
        let due = created.effects.timers[0].due_at_ms;
        // Watch the attempt counter in the row until the timer is gone.
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let e = effects(s.store().as_ref(), "throws", "auto").await;
            let Some(t) = e.timers.first() else { break };
            if seen.last() != Some(&t.attempts) {
                seen.push(t.attempts);
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still there: {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let gone_at = statewire::clock::now_ms();
        assert_eq!(seen.first(), Some(&0));
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
        assert!(
            seen.len() >= 4,
            "attempts were counted one by one: {seen:?}"
        );
        assert!(
            gone_at >= due + 4 * RETRY_MS as i64,
            "five attempts take four intervals after the due time"
        );
        assert_eq!(state(&s, "throws", "auto").await, "a");
        assert!(history(&s, "throws", "auto").await.is_empty());
        // Other tests of this binary may drop timers too, so these are lower bounds.
        let after = exporter.render();
        assert!(series(&after, dropped) - series(&before, dropped) >= 1.0);
        assert!(series(&after, failed) - series(&before, failed) >= 5.0);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn timers_of_a_paused_instance_fail_their_attempts_and_resume_replays_nothing() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed", TIMED).await;
        create(&s, "timed", "p").await;
        let status = "/machines/timed/i/p/status";
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = s.admin().put(status, &json!({"status": "paused"})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        // Due at +300; five attempts 50 ms apart end by about +500.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(effects(s.store().as_ref(), "timed", "p")
            .await
            .timers
            .is_empty());
        let r = s.admin().put(status, &json!({"status": "running"})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state(&s, "timed", "p").await, "a");
        assert!(history(&s, "timed", "p").await.is_empty());
        assert!(effects(s.store().as_ref(), "timed", "p").await.is_empty());
        s.shutdown().await;
    })
    .await;
}
