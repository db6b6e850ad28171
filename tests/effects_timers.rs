//! Durable timers through the public API: `after`, explicit delayed sends, cancels, same-id
//! timers, self-sends, XState 5, and a forced double delivery. Times are the server's commit
//! times: a timer is never early and at most `LATE_MS` late.

mod effects_support;
mod http_support;

use std::time::Duration;

use effects_support::machines::{DUP, ENQUEUE, PING, TIMED, TIMED_AFTER, TIMED_V5};
use effects_support::{
    assert_on_time, create, deploy, effects, history, record, send_ok, server, server_with, state,
    transitions, wait_for_state,
};
use http_support::within;
use serde_json::json;
use statewire::registry::TimerFire;
use statewire::server::Extensions;

const SETTLED: Duration = Duration::from_secs(3);

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn an_after_timer_moves_the_instance_on_time_and_leaves_nothing_behind() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed", TIMED).await;
        assert_eq!(create(&s, "timed", "one").await["state"], "a");
        let armed = record(s.store().as_ref(), "timed", "one").await;
        assert_eq!(armed.effects.timers.len(), 1);
        assert_eq!(armed.effects.timers[0].id, TIMED_AFTER);
        assert_eq!(armed.effects.wake_at_ms, Some(armed.created_at_ms + 300));

        wait_for_state(&s, "timed", "one", &json!("b"), SETTLED).await;
        let fired = transitions(s.store().as_ref(), "timed", "one").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event, json!({ "type": TIMED_AFTER }));
        assert_on_time(armed.created_at_ms, 300, fired[0].created_at_ms);
        assert_eq!(history(&s, "timed", "one").await, [TIMED_AFTER]);
        let left = effects(s.store().as_ref(), "timed", "one").await;
        assert!(
            left.timers.is_empty() && left.wake_at_ms.is_none(),
            "{left:?}"
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_evicted_instance_keeps_its_timer() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed", TIMED).await;
        create(&s, "timed", "cold").await;
        let registry = s.running().registry();
        assert!(registry.evict_idle(Duration::ZERO) >= 1);
        assert_eq!(registry.stats().hot, 0);
        let loads = registry.stats().loads;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(registry.stats().loads > loads, "delivering loaded it again");
        assert_eq!(history(&s, "timed", "cold").await, [TIMED_AFTER]);
        assert_eq!(state(&s, "timed", "cold").await, "b");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn leaving_the_state_cancels_its_after_timer() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed", TIMED).await;
        create(&s, "timed", "two").await;
        sleep_ms(100).await;
        assert_eq!(
            send_ok(&s, "timed", "two", json!({"type": "LEAVE"})).await,
            "c"
        );
        assert!(effects(s.store().as_ref(), "timed", "two").await.is_empty());
        sleep_ms(500).await;
        assert_eq!(state(&s, "timed", "two").await, "c");
        assert_eq!(history(&s, "timed", "two").await, ["LEAVE"]);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reentering_the_state_restarts_its_after_timer() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed", TIMED).await;
        create(&s, "timed", "three").await;
        sleep_ms(200).await;
        assert_eq!(
            send_ok(&s, "timed", "three", json!({"type": "SELF"})).await,
            "a"
        );
        sleep_ms(200).await;
        assert_eq!(state(&s, "timed", "three").await, "a", "not at +300");
        wait_for_state(&s, "timed", "three", &json!("b"), SETTLED).await;
        let h = transitions(s.store().as_ref(), "timed", "three").await;
        let types: Vec<&str> = h
            .iter()
            .map(|t| t.event["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["SELF", TIMED_AFTER]);
        assert_on_time(h[0].created_at_ms, 300, h[1].created_at_ms);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_delayed_send_never_arrives() {
    within(120, async {
        let s = server().await;
        deploy(&s, "ping", PING).await;
        create(&s, "ping", "a").await;
        send_ok(&s, "ping", "a", json!({"type": "ARM"})).await;
        sleep_ms(50).await;
        send_ok(&s, "ping", "a", json!({"type": "DISARM"})).await;
        assert!(effects(s.store().as_ref(), "ping", "a").await.is_empty());
        sleep_ms(450).await;
        assert_eq!(state(&s, "ping", "a").await, "c");
        assert_eq!(history(&s, "ping", "a").await, ["ARM", "DISARM"]);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_delayed_send_arrives_on_time_even_after_its_state_was_left() {
    within(120, async {
        let s = server().await;
        deploy(&s, "ping", PING).await;
        for (instance, leave) in [("stay", false), ("away", true)] {
            create(&s, "ping", instance).await;
            send_ok(&s, "ping", instance, json!({"type": "ARM"})).await;
            if leave {
                sleep_ms(50).await;
                assert_eq!(
                    send_ok(&s, "ping", instance, json!({"type": "AWAY"})).await,
                    "d"
                );
            }
            wait_for_state(&s, "ping", instance, &json!("pinged"), SETTLED).await;
            let h = transitions(s.store().as_ref(), "ping", instance).await;
            let last = h.last().unwrap();
            assert_eq!(last.event["type"], "PING");
            assert_on_time(h[0].created_at_ms, 200, last.created_at_ms);
        }
        assert_eq!(history(&s, "ping", "away").await, ["ARM", "AWAY", "PING"]);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cancel_removes_only_the_newest_of_two_timers_with_one_id() {
    within(120, async {
        let s = server().await;
        deploy(&s, "dup", DUP).await;
        create(&s, "dup", "x").await;
        send_ok(&s, "dup", "x", json!({"type": "ARM"})).await;
        sleep_ms(50).await;
        send_ok(&s, "dup", "x", json!({"type": "ARM"})).await;
        sleep_ms(10).await;
        send_ok(&s, "dup", "x", json!({"type": "CANCEL"})).await;
        sleep_ms(240).await;
        let h = transitions(s.store().as_ref(), "dup", "x").await;
        let types: Vec<&str> = h
            .iter()
            .map(|t| t.event["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["ARM", "ARM", "CANCEL", "T"],
            "the older orphan fires"
        );
        assert_on_time(h[0].created_at_ms, 100, h[3].created_at_ms);
        let r = record(s.store().as_ref(), "dup", "x").await;
        assert_eq!(r.context["n"], 1);
        assert!(r.effects.is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_self_send_is_processed_after_the_current_event() {
    within(120, async {
        let s = server().await;
        deploy(&s, "queue", ENQUEUE).await;
        create(&s, "queue", "q").await;
        assert_eq!(
            send_ok(&s, "queue", "q", json!({"type": "GO"})).await,
            "first"
        );
        wait_for_state(&s, "queue", "q", &json!("second"), SETTLED).await;
        let h = transitions(s.store().as_ref(), "queue", "q").await;
        let types: Vec<&str> = h
            .iter()
            .map(|t| t.event["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["GO", "NEXT"]);
        assert_on_time(h[0].created_at_ms, 0, h[1].created_at_ms);
        assert!(effects(s.store().as_ref(), "queue", "q").await.is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_timer_fired_twice_at_once_makes_one_transition() {
    within(120, async {
        let manual = Extensions {
            manual_timers: true,
            ..Extensions::default()
        };
        let s = server_with(|_| {}, manual).await;
        deploy(&s, "timed", TIMED).await;
        create(&s, "timed", "twice").await;
        let key = effects_support::key("timed", "twice");
        let timer = effects(s.store().as_ref(), "timed", "twice").await.timers[0].clone();
        let registry = s.running().registry();

        let early = registry
            .fire_timer(key.clone(), timer.id.clone(), timer.seq)
            .await
            .unwrap();
        assert_eq!(
            early,
            TimerFire::NotDue {
                ready_at_ms: timer.due_at_ms
            },
            "never early"
        );

        let wait = timer.due_at_ms - statewire::clock::now_ms();
        sleep_ms(u64::try_from(wait).unwrap_or(0) + 5).await;
        let (one, two) = tokio::join!(
            registry.fire_timer(key.clone(), timer.id.clone(), timer.seq),
            registry.fire_timer(key.clone(), timer.id.clone(), timer.seq),
        );
        let mut outcomes = [one.unwrap(), two.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, TimerFire::Stale));
        assert_eq!(
            outcomes,
            [TimerFire::Delivered { version: 2 }, TimerFire::Stale]
        );
        assert_eq!(history(&s, "timed", "twice").await, [TIMED_AFTER]);
        assert_eq!(state(&s, "timed", "twice").await, "b");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn xstate_5_after_delayed_raise_and_cancel_are_durable_timers() {
    within(120, async {
        let s = server().await;
        deploy(&s, "timed5", TIMED_V5).await;

        create(&s, "timed5", "after").await;
        let armed = record(s.store().as_ref(), "timed5", "after").await;
        wait_for_state(&s, "timed5", "after", &json!("b"), SETTLED).await;
        let h = transitions(s.store().as_ref(), "timed5", "after").await;
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].event["type"], "xstate.after.300.m.a");
        assert_on_time(armed.created_at_ms, 300, h[0].created_at_ms);

        create(&s, "timed5", "raise").await;
        assert_eq!(
            send_ok(&s, "timed5", "raise", json!({"type": "LEAVE"})).await,
            "c"
        );
        send_ok(&s, "timed5", "raise", json!({"type": "ARM"})).await;
        wait_for_state(&s, "timed5", "raise", &json!("pinged"), SETTLED).await;
        let h = transitions(s.store().as_ref(), "timed5", "raise").await;
        assert_eq!(h[2].event, json!({"type": "PING"}));
        assert_on_time(h[1].created_at_ms, 200, h[2].created_at_ms);

        create(&s, "timed5", "cancel").await;
        send_ok(&s, "timed5", "cancel", json!({"type": "LEAVE"})).await;
        send_ok(&s, "timed5", "cancel", json!({"type": "ARM"})).await;
        send_ok(&s, "timed5", "cancel", json!({"type": "DISARM"})).await;
        sleep_ms(400).await;
        assert_eq!(state(&s, "timed5", "cancel").await, "c");
        assert_eq!(
            history(&s, "timed5", "cancel").await,
            ["LEAVE", "ARM", "DISARM"]
        );
        s.shutdown().await;
    })
    .await;
}
