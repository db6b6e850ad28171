//! The diff extension end to end: patches over the view `{state, publicContext, tags, done}`,
//! sequence numbers, and resuming after a dropped connection. (The property that patches
//! applied in order rebuild exactly the latest view, over random JSON and random
//! interleavings, is tested at the fan-out level; the toggle machine's context is too small to
//! vary much.)

mod http_support;
mod rt_support;

use http_support::within;
use rt_support::{create, toggle, toggle_server, user, view, DiffView, WsClient};

#[tokio::test]
async fn a_diff_subscriber_rebuilds_every_state_from_patches() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        create(&s, &token, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.subscribe_diffs("a", "d", None).await;
        let mut client = DiffView::default();
        let first = ws.next_json().await;
        assert_eq!(
            first["type"], "instance-update",
            "a fresh subscriber starts from a full update"
        );
        client.receive(&first);

        let mut patches = 0;
        for _ in 0..6 {
            let state = toggle(&s, &token, "a").await;
            while client.ts != state["ts"].as_i64() {
                let frame = ws.next_json().await;
                if frame["type"] == "instance-patch" {
                    patches += 1;
                }
                client.receive(&frame);
            }
            assert_eq!(client.view.as_ref(), Some(&view(&state)));
        }
        assert!(patches > 0, "updates after the first come as patches");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_reconnecting_with_its_last_sequence_gets_what_it_missed() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        create(&s, &token, "a").await;
        let addr = s.running().addr();
        let mut ws = WsClient::connect(addr, &token).await;
        ws.subscribe_diffs("a", "d", None).await;
        let mut client = DiffView::default();
        client.receive(&ws.next_json().await);
        let held = (client.seq.unwrap(), client.ts.unwrap());
        drop(ws);

        // Missed while disconnected.
        toggle(&s, &token, "a").await;
        let latest = toggle(&s, &token, "a").await;

        let mut ws = WsClient::connect(addr, &token).await;
        ws.subscribe_diffs("a", "d", Some(held)).await;
        let mut frames = 0;
        while client.ts != latest["ts"].as_i64() {
            let frame = ws.next_json().await;
            assert!(
                frame["seq"].as_u64() > Some(held.0),
                "nothing from before the held sequence"
            );
            client.receive(&frame);
            frames += 1;
        }
        assert!(
            frames <= 2,
            "one frame per missed change at most, or one full update"
        );
        assert_eq!(client.view.as_ref(), Some(&view(&latest)));

        // Already current: the subscribe is confirmed by an empty patch.
        drop(ws);
        let mut ws = WsClient::connect(addr, &token).await;
        ws.subscribe_diffs("a", "d", Some((client.seq.unwrap(), client.ts.unwrap())))
            .await;
        let confirm = ws.next_json().await;
        assert_eq!(confirm["type"], "instance-patch");
        assert_eq!(confirm["prevSeq"], confirm["seq"]);
        assert_eq!(confirm["patch"], serde_json::json!([]));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_sequence_from_another_incarnation_gets_a_full_update() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let created = create(&s, &token, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        // Sequence 1 with a ts this instance never had.
        let wrong_ts = created["ts"].as_i64().unwrap() - 1;
        ws.subscribe_diffs("a", "d", Some((1, wrong_ts))).await;
        assert_eq!(ws.next_json().await["type"], "instance-update");
        ws.subscribe_diffs("a", "d", Some((99, 0))).await;
        assert_eq!(ws.next_json().await["type"], "instance-update");
        s.shutdown().await;
    })
    .await;
}
