//! End-to-end HTTP benchmarks: the real server in-process on 127.0.0.1:0, the raw-wasm toggle
//! machine, keep-alive connections.
//!
//! - `http/<store>/get-state`: one `GET /machines/toggle/i/{i}` (allowRead included).
//! - `http/<store>/send-event`: one `POST …/events`, answered once the commit is durable.
//! - `http/<store>/send-event-x16`: 16 connections, each on its own instance, sending events
//!   concurrently; the time reported is per event, so its inverse is the throughput.
//!
//! Run with `cargo bench --bench http_api`.

#[path = "../tests/http_support/mod.rs"]
mod http_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{Method, Request};
use http_body_util::Full;
use serde_json::json;
use statewire::config::StoreKind;
use statewire::server::Extensions;

use http_support::client::Connection;
use http_support::{machines, TestServer};

const CONCURRENT: usize = 16;

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn request(
    method: Method,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> Request<Full<Bytes>> {
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(serde_json::to_vec(body).unwrap())
    };
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

/// A server with the toggle machine and instances `i0..iN`, each with a token of its owner.
async fn setup(store: StoreKind, instances: usize) -> (TestServer, Vec<String>) {
    let server = TestServer::start_with(|c| c.store.kind = store, Extensions::default()).await;
    let code = machines::toggle().await;
    machines::machine_with_version(&server, "toggle", &code).await;
    let mut tokens = Vec::new();
    for i in 0..instances {
        let name = format!("i{i}");
        let token = server
            .token(
                &["instances.write", "state.read", "events.write"],
                json!({"sub": name}),
            )
            .await;
        let created = server
            .client
            .authed(&token)
            .post("/machines/toggle", &json!({"slug": name}))
            .await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        tokens.push(token);
    }
    (server, tokens)
}

async fn send_event(conn: &mut Connection, instance: usize, token: &str) {
    let path = format!("/machines/toggle/i/i{instance}/events");
    let reply = conn
        .send(request(
            Method::POST,
            &path,
            token,
            &json!({"event": "toggle"}),
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn http_api(c: &mut Criterion) {
    let rt = tokio();
    for store in [StoreKind::Memory, StoreKind::Embedded] {
        let label = format!("{store:?}").to_lowercase();
        let (server, tokens) = rt.block_on(setup(store, CONCURRENT));
        let mut conn = rt.block_on(server.client.connect());
        let mut group = c.benchmark_group(format!("http/{label}"));
        group.throughput(Throughput::Elements(1));
        group.measurement_time(Duration::from_secs(10));

        group.bench_function(BenchmarkId::from_parameter("get-state"), |b| {
            b.iter(|| {
                let req = request(
                    Method::GET,
                    "/machines/toggle/i/i0",
                    &tokens[0],
                    &json!(null),
                );
                let reply = rt.block_on(conn.send(req));
                assert_eq!(reply.status, 200);
            })
        });
        group.bench_function(BenchmarkId::from_parameter("send-event"), |b| {
            b.iter(|| rt.block_on(send_event(&mut conn, 0, &tokens[0])))
        });
        group.bench_function(
            BenchmarkId::from_parameter(format!("send-event-x{CONCURRENT}")),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(concurrent_events(&server, &tokens, iters as usize))
                })
            },
        );
        group.finish();
        rt.block_on(server.shutdown());
    }
}

/// Sends `total` events spread over [`CONCURRENT`] connections and instances; returns the
/// wall time.
async fn concurrent_events(server: &TestServer, tokens: &[String], total: usize) -> Duration {
    let mut conns = Vec::new();
    for _ in 0..CONCURRENT {
        conns.push(server.client.connect().await);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let token = tokens[i].clone();
        let share = total / CONCURRENT + usize::from(i < total % CONCURRENT);
        tasks.spawn(async move {
            for _ in 0..share {
                send_event(&mut conn, i, &token).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

criterion_group!(benches, http_api);
criterion_main!(benches);
