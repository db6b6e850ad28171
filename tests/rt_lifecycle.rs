//! Connections over time: token expiry during a long-lived connection, and graceful shutdown.

mod http_support;
mod rt_support;

use std::time::{SystemTime, UNIX_EPOCH};

use http_support::{within, TestServer};
use rt_support::{create, toggle, toggle_server, user, WsClient, USER_SCOPES};
use serde_json::json;
use statewire::auth::keys::mint_key;

/// A token like `@statebacked/token` makes, but with `exp` chosen freely (even in the past).
async fn token_expiring_at(s: &TestServer, sub: &str, exp_s: u64) -> String {
    let key = mint_key(
        "exp".into(),
        USER_SCOPES.iter().map(|s| s.to_string()).collect(),
    );
    s.store().put_key(&key).await.unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let claims = json!({
        "act": {"sub": sub}, "aud": "https://api.statebacked.dev/",
        "iss": "test", "iat": exp_s.saturating_sub(3600), "exp": exp_s,
    });
    let secret = jsonwebtoken::EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &secret).unwrap()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn an_expiring_token_closes_the_connection_with_4001_and_its_reconnect_is_refused() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let addr = s.running().addr();
        create(&s, &user(&s, "a").await, "a").await;
        // Verification allows 30 s past `exp`: this token has about 10 s of validity left.
        let token = token_expiring_at(&s, "a", now_s() - 20).await;
        let mut ws = WsClient::connect(addr, &token).await;
        ws.subscribe("a", "r").await;
        assert_eq!(ws.next_json().await["type"], "instance-update");

        let close = ws.close_frame().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 4001);
        assert_eq!(close.reason.as_str(), "token expired");
        // The official client reconnects at once with the same token: it meets a cheap 401,
        // which ends its reconnect loop.
        let refused = WsClient::connect_url(addr, &rt_support::rt_url(addr, &token))
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.status, 401);
        let stats = s.running().realtime().unwrap().stats();
        assert_eq!(stats.closed_token_expired, 1);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_about_to_expire_is_refused_at_upgrade() {
    within(60, async {
        let s = toggle_server(|_| {}).await;
        let addr = s.running().addr();
        // 2 s of validity left (exp 28 s ago, 30 s leeway): not worth a connection.
        let token = token_expiring_at(&s, "a", now_s() - 28).await;
        let refused = WsClient::connect_url(addr, &rt_support::rt_url(addr, &token))
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.status, 401);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_pushes_committed_updates_then_closes_with_1001() {
    within(120, async {
        let s = toggle_server(|_| {}).await;
        let token = user(&s, "a").await;
        create(&s, &token, "a").await;
        let mut ws = WsClient::connect(s.running().addr(), &token).await;
        ws.subscribe("a", "r").await;
        ws.next_json().await;

        let last = toggle(&s, &token, "a").await;
        let shutdown = tokio::spawn(s.shutdown());
        // The commit made before shutdown reaches the subscriber before the close frame.
        let mut saw_last = false;
        let close = loop {
            match ws.next_message().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                    saw_last |= frame["ts"] == last["ts"];
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(saw_last, "the last committed state was pushed");
        assert_eq!(u16::from(close.expect("a close frame").code), 1001);
        shutdown.await.unwrap();
    })
    .await;
}
