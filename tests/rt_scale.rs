//! Ten thousand WebSocket connections to one server, each subscribed to the same instance,
//! all receiving every update.
//!
//! The server runs in this test process; the clients run in a child process (this same test
//! binary, re-run with `STATEWIRE_RT_FLEET` set), because the two ends of 10,000 loopback
//! connections need 20,000 descriptors and the hard `RLIMIT_NOFILE` here is 20,000.

mod http_support;
mod rt_support;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http_support::within;
use rt_support::{client_config, create, rt_url, toggle, toggle_server, user};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const CONNECTIONS: usize = 10_000;
/// Events sent once every client is subscribed.
const EVENTS: u64 = 3;
/// Handshakes in flight at once from the fleet.
const CONNECTING_AT_ONCE: usize = 200;
const FLEET_ENV: &str = "STATEWIRE_RT_FLEET";
const TEST_NAME: &str = "ten_thousand_connections_subscribe_and_all_receive_every_update";

/// Raises the soft descriptor limit to the hard one.
fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn ten_thousand_connections_subscribe_and_all_receive_every_update() {
    if let Ok(spec) = std::env::var(FLEET_ENV) {
        return runtime().block_on(fleet(&spec));
    }
    let limit = raise_nofile_limit();
    assert!(
        limit as usize > CONNECTIONS + 1000,
        "RLIMIT_NOFILE {limit} is too low"
    );
    runtime().block_on(within(600, async {
        let s = toggle_server(|_| {}).await;
        let addr = s.running().addr();
        let token = user(&s, "a").await;
        create(&s, &token, "a").await;

        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
            .env(FLEET_ENV, format!("{addr} {token} {}", 1 + EVENTS))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the fleet starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(
            report(&mut lines, "fleet ready:").await,
            CONNECTIONS.to_string()
        );
        let rt = s.running().realtime().unwrap().clone();
        assert_eq!(rt.stats().connections, CONNECTIONS);
        assert_eq!(rt.fanout_stats().subscriptions, CONNECTIONS);

        for _ in 0..EVENTS {
            toggle(&s, &token, "a").await;
        }
        assert_eq!(
            report(&mut lines, "fleet done:").await,
            CONNECTIONS.to_string()
        );
        assert!(child.wait().await.unwrap().success());
        let fanout = rt.fanout_stats();
        assert_eq!(
            fanout.published, EVENTS,
            "each change serialized once: {fanout:?}"
        );
        s.shutdown().await;
    }));
}

/// What follows `want` on the fleet's first line that says it.
async fn report(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: &str,
) -> String {
    while let Some(line) = lines.next_line().await.unwrap() {
        // libtest may print "test <name> ... " on the same line first.
        if let Some((_, rest)) = line.split_once(want) {
            return rest.trim().to_owned();
        }
    }
    panic!("the fleet ended before saying {want:?}");
}

/// The client side: connects, subscribes, waits for every connection to reach the target
/// sequence, and reports on stdout.
async fn fleet(spec: &str) {
    raise_nofile_limit();
    let mut parts = spec.split(' ');
    let addr: std::net::SocketAddr = parts.next().unwrap().parse().unwrap();
    let token = parts.next().unwrap().to_owned();
    let target: u64 = parts.next().unwrap().parse().unwrap();
    let url = rt_url(addr, &token);

    let subscribed = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (url, subscribed, finished) = (url.clone(), subscribed.clone(), finished.clone());
        clients.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (mut ws, _) =
                tokio_tungstenite::client_async_with_config(url, stream, Some(client_config()))
                    .await
                    .expect("handshake");
            let subscribe = json!({"type": "subscribe-to-instance", "requestId": "r",
                "machineName": "toggle", "machineInstanceName": "a"});
            ws.send(Message::Text(subscribe.to_string().into()))
                .await
                .unwrap();
            let mut seq = next_seq(&mut ws).await;
            subscribed.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while seq < target {
                let next = next_seq(&mut ws).await;
                assert!(next > seq, "updates arrive in order");
                seq = next;
            }
            finished.fetch_add(1, Ordering::Relaxed);
            // Stay connected until the whole fleet is done.
            ws
        });
        if clients.len() % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    while subscribed.load(Ordering::Relaxed) < CONNECTIONS {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("fleet ready: {}", subscribed.load(Ordering::Relaxed));
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    while let Some(done) = clients.join_next().await {
        sockets.push(done.expect("a client failed"));
    }
    println!("fleet done: {}", finished.load(Ordering::Relaxed));
    drop(sockets);
}

async fn next_seq(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> u64 {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame["type"], "instance-update", "{frame}");
                return frame["seq"].as_u64().unwrap();
            }
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}
