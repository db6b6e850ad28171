//! A subscriber that stops reading: it is given the latest state instead of every update,
//! closed as a slow consumer once a write stays blocked past the stall timeout, and never
//! holds up the other subscribers.

mod http_support;
mod rt_support;

use http_support::machines;
use http_support::{within, TestServer};
use rt_support::{rt_url, WsClient, USER_SCOPES};
use serde_json::json;
use statewire::server::Extensions;
use tokio::net::TcpSocket;

/// Events sent. Loopback sockets absorb megabytes before a write blocks (the kernel grows the
/// send buffer up to `tcp_wmem`'s 4 MB here), so the stalled client must be sent more than
/// that: 12,000 updates of about 420 bytes.
const EVENTS: usize = 12_000;

/// Names as long as allowed, so that every update is as large as the toggle makes them.
fn long_name(prefix: &str) -> String {
    format!("{prefix}{}", "x".repeat(128 - prefix.len()))
}

#[tokio::test]
async fn a_stalled_subscriber_is_conflated_then_closed_and_the_others_keep_up() {
    within(300, async {
        let s = TestServer::start_with(|c| c.websocket.stall_timeout_ms = 500, Extensions::default()).await;
        let machine = long_name("m");
        machines::machine_with_version(&s, &machine, &machines::toggle().await).await;
        let addr = s.running().addr();
        let name = long_name("i");
        let token = s.token(USER_SCOPES, json!({"sub": name})).await;
        let r = s.client.authed(&token).post(&format!("/machines/{machine}"), &json!({"slug": name})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let subscribe = json!({"type": "subscribe-to-instance", "requestId": "r", "machineName": machine, "machineInstanceName": name});

        // A client with a tiny receive buffer that reads its first update, then stops.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut stalled = WsClient::connect_on(stream, &rt_url(addr, &token)).await.unwrap();
        stalled.send(subscribe.clone()).await;
        assert_eq!(stalled.next_json().await["seq"], 1);

        let mut healthy = WsClient::connect(addr, &token).await;
        healthy.send(subscribe).await;
        assert_eq!(healthy.next_json().await["seq"], 1);
        let watcher = tokio::spawn(async move {
            let mut last = 1;
            while last < 1 + EVENTS as u64 {
                let seq = healthy.next_json().await["seq"].as_u64().unwrap();
                assert!(seq > last, "in order");
                last = seq;
            }
        });

        // Events over one socket, pipelined, as fast as the server takes them.
        let mut sender = WsClient::connect(addr, &token).await;
        let (mut sent, mut replies) = (0, 0);
        while replies < EVENTS {
            while sent < EVENTS && sent - replies < 8 {
                sender
                    .send(json!({"type": "send-event", "requestId": sent.to_string(),
                        "machineName": machine, "machineInstanceName": name, "event": "toggle"}))
                    .await;
                sent += 1;
            }
            let reply = sender.next_json().await;
            assert_eq!(reply["type"], "reply", "{reply}");
            replies += 1;
        }
        watcher.await.unwrap();

        let rt = s.running().realtime().unwrap().clone();
        within(30, async {
            while rt.stats().closed_slow_consumer == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        let fanout = rt.fanout_stats();
        assert!(fanout.conflated > 0, "updates the stalled client did not take were replaced: {fanout:?}");
        // Reading again, the stalled client finds fewer frames than updates, then the end of
        // the stream (the 4008 close frame last, if it fitted in the socket).
        let mut frames = 0;
        let close = loop {
            match stalled.next_message().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) => frames += 1,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
                _ => break None,
            }
        };
        assert!(frames < EVENTS, "it got fewer frames than updates: {frames}");
        if let Some(close) = close {
            assert_eq!(u16::from(close.code), 4008);
        }
        s.shutdown().await;
    })
    .await;
}
