//! Starting and stopping: the `serve` binary's ready line and signals, and graceful shutdown
//! of the in-process server with a request in flight.

mod http_support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_support::{within, TestServer};
use serde_json::json;
use statewire::auth::admin::read_admin_key;
use statewire::auth::sign::{sign_token, SignOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first part of `POST /machines` with a declared body of which only `{` is sent.
fn partial_create(token: &str, slug: &str) -> (Vec<u8>, Vec<u8>) {
    let body = format!("{{\"slug\": \"{slug}\"}}");
    let head = format!(
        "POST /machines HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{{",
        body.len()
    );
    (head.into_bytes(), body.as_bytes()[1..].to_vec())
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    within(60, async {
        let s = TestServer::start().await;
        let addr = s.running().addr();
        let (head, rest) = partial_create(&s.admin_token, "late");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&head).await.unwrap();
        // Let the server read the head, so the request is in flight.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let store = s.store();
        let TestServer { server, dir, .. } = s;
        let shutdown = tokio::spawn(server.unwrap().shutdown(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!shutdown.is_finished(), "shutdown waits for the request");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );

        stream.write_all(&rest).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
        shutdown.await.unwrap().unwrap();
        let machine = statewire::ids::MachineName::parse("late").unwrap();
        assert!(store.get_machine(&machine).await.unwrap().is_some());
        drop(dir);
    })
    .await;
}

#[tokio::test]
async fn shutdown_gives_up_on_a_stuck_request_after_the_grace_period() {
    within(60, async {
        let s = TestServer::start().await;
        let (head, _) = partial_create(&s.admin_token, "never");
        let mut stream = TcpStream::connect(s.running().addr()).await.unwrap();
        stream.write_all(&head).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let TestServer { server, .. } = s;
        server
            .unwrap()
            .shutdown(Duration::from_millis(500))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn machines_survive_a_restart_on_the_embedded_store() {
    within(60, async {
        let embedded = |c: &mut statewire::config::Config| {
            c.store.kind = statewire::config::StoreKind::Embedded
        };
        let s = TestServer::start_with(embedded, Default::default()).await;
        s.create_machine("kept").await;
        let dir = s.shutdown().await;

        let s = TestServer::start_in(dir, embedded, Default::default()).await;
        let r = s.admin().get("/machines/kept").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        s.shutdown().await;
    })
    .await;
}

/// `statewire serve` on port 0 with the memory store, and the address it printed.
fn spawn_serve(data_dir: &std::path::Path, grace_ms: u64) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_statewire"))
        .args(["serve", "--port", "0", "--store", "memory", "--data-dir"])
        .arg(data_dir)
        .env("STATEWIRE_SHUTDOWN_GRACE_MS", grace_ms.to_string())
        .env("STATEWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(url) = line.trim_end().strip_prefix("statewire listening on ") else {
        let _ = child.kill();
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
        panic!("unexpected first line {line:?}; stderr: {stderr}");
    };
    (child, url.to_owned())
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child off the reactor.
async fn exit_code(mut child: Child) -> Option<i32> {
    tokio::task::spawn_blocking(move || child.wait().unwrap().code())
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_prints_its_address_answers_health_and_stops_on_sigterm() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = spawn_serve(dir.path(), 5_000);
        let addr: std::net::SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
        assert_ne!(addr.port(), 0);
        let health = http_support::Client::new(addr)
            .request(http::Method::GET, "/healthz", &[], "")
            .await;
        assert_eq!(health.status, 200);
        signal(&child, "TERM");
        assert_eq!(exit_code(child).await, Some(0));
    })
    .await;
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = spawn_serve(dir.path(), 60_000);
        let admin = read_admin_key(dir.path()).unwrap();
        let options = SignOptions {
            expires_in: Duration::from_secs(600),
            issuer: None,
        };
        let token = sign_token(&admin.id, &admin.secret, &json!({}), &options)
            .unwrap()
            .token;
        let (head, _) = partial_create(&token, "stuck");
        let mut stream = TcpStream::connect(url.strip_prefix("http://").unwrap())
            .await
            .unwrap();
        stream.write_all(&head).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;

        signal(&child, "TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        signal(&child, "INT");
        assert_eq!(exit_code(child).await, Some(130));
        assert!(started.elapsed() < Duration::from_secs(10));
    })
    .await;
}
