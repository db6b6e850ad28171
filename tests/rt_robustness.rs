//! Hostile and broken input on `/rt`: malformed frames, unknown types, binary and oversized
//! frames, protocol garbage and silence. Each gets an error frame or a close, never a crash.

mod http_support;
mod rt_support;

use std::time::Duration;

use http_support::within;
use rt_support::{toggle_server, user, WsClient};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_and_unknown_messages_get_error_frames_and_the_connection_lives_on() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        let cases = [
            ("not json", None, "invalid-parameter"),
            ("[1,2,3]", None, "invalid-parameter"),
            (r#"{"type":"launch","requestId":"u1"}"#, Some("u1"), "invalid-parameter"),
            (r#"{"requestId":"u2"}"#, Some("u2"), "invalid-parameter"),
            (
                r#"{"type":"subscribe-to-instance","requestId":"u3","machineName":"toggle"}"#,
                Some("u3"),
                "invalid-parameter",
            ),
            (
                r#"{"type":"subscribe-to-instance","requestId":"u4","machineName":"../x","machineInstanceName":"a"}"#,
                Some("u4"),
                "invalid-parameter",
            ),
        ];
        ws.send_raw(Message::Text("not json".into())).await;
        let error = ws.next_json().await;
        let said = error["error"].as_str().unwrap();
        assert!(said.starts_with("message is not valid JSON"), "{said}");
        for (text, request_id, code) in cases {
            ws.send_raw(Message::Text(text.into())).await;
            let error = ws.next_json().await;
            assert_eq!(error["type"], "error", "{text}");
            assert_eq!(error["status"], 400, "{text}");
            assert_eq!(error["code"], code, "{text}");
            assert_eq!(error["requestId"].as_str(), request_id, "{text}");
        }
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await, json!({"type": "pong"}));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn binary_frames_close_the_connection_with_1003() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
        let close = ws.close_frame().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1003);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_messages_close_the_connection_with_1009() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        let huge = format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "x".repeat(2 * 1024 * 1024)
        );
        // The server may close before the whole frame is written.
        let _ = futures_util::SinkExt::send(&mut ws.ws, Message::Text(huge.into())).await;
        let close = ws.close_frame().await;
        if let Some(close) = close {
            assert_eq!(u16::from(close.code), 1009);
        }
        // The server is fine and serves the next client.
        let mut next = WsClient::connect(s.running().addr(), &token).await;
        next.send(json!({"type": "ping"})).await;
        assert_eq!(next.next_json().await["type"], "pong");
        assert_eq!(s.running().realtime().unwrap().stats().closed_bad_input, 1);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn protocol_garbage_after_the_upgrade_ends_that_connection_only() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let addr = s.running().addr();
        let mut tcp = upgraded(addr, &token).await;
        // An unmasked frame with reserved bits and opcode set: a protocol violation.
        tcp.write_all(&[0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;

        let mut ws = WsClient::connect(addr, &token).await;
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await["type"], "pong");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_ping_interval_and_grace_and_pings_keep_it() {
    within(120, async {
        let s = toggle_server(|c| {
            c.websocket.ping_interval_ms = 600;
            c.websocket.ping_grace_ms = 400;
        })
        .await;
        let token = user(&s, "a").await;
        let addr = s.running().addr();

        let mut pinging = WsClient::connect(addr, &token).await;
        let mut silent = WsClient::connect(addr, &token).await;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            pinging.send(json!({"type": "ping"})).await;
            assert_eq!(pinging.next_json().await["type"], "pong");
        }
        let close = silent.close_frame().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 4000);
        assert_eq!(close.reason.as_str(), "idle");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_that_drops_its_connection_is_not_counted_as_a_protocol_close() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        let addr = s.running().addr();
        let realtime = s.running().realtime().unwrap();

        // Open, talk, then drop the TCP connection without a close frame.
        let mut ws = WsClient::connect(addr, &token).await;
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await["type"], "pong");
        assert_eq!(realtime.stats().connections, 1);
        drop(ws);
        // And one that drops right after the upgrade, before any frame.
        let mut tcp = upgraded(addr, &token).await;
        tcp.shutdown().await.unwrap();
        drop(tcp);
        settle(|| realtime.stats().connections == 0).await;
        assert_eq!(realtime.stats().closed_bad_input, 0);

        // A real protocol violation on the same server is still counted.
        let mut tcp = upgraded(addr, &token).await;
        tcp.write_all(&[0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
        settle(|| realtime.stats().connections == 0).await;
        assert_eq!(realtime.stats().closed_bad_input, 1);
        s.shutdown().await;
    })
    .await;
}

/// A raw TCP connection upgraded to `/rt`, with the 101 answer read.
async fn upgraded(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /rt?token={token} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = tcp.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    tcp
}

/// Waits (polling, up to 10 s) until `done` holds.
async fn settle(done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not settle within 10 s");
}
