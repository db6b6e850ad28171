//! The metrics end to end, as CI checks them: statewire in-process on loopback with the
//! embedded store, a real Prometheus (the Debian package) scraping it every second, a short
//! load over HTTP and WebSocket, then Prometheus's query API must show every metric the
//! dashboard uses, moving where the load moves it, and every query of every panel in
//! `grafana/dashboards/statewire.json` must return data.

mod effects_support;
mod http_support;
mod metrics_support;
mod rt_support;
mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use http::{Method, StatusCode};
use http_support::{machines, within, TestServer};
use metrics_support::prometheus::{self, Prometheus};
use rt_support::{rt_url, WsClient};
use serde_json::{json, Value};
use statewire::config::{FetchConfig, StoreKind};
use statewire::effects::HostOps;
use statewire::metrics::{
    self, events, fanout as fm, fetch, http as hm, runtime as rm, services, session as wm,
    store as sm, timers as tm,
};
use statewire::server::Extensions;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

const SCOPES: &[&str] = &["instances.write", "state.read", "events.write"];

/// How long concurrent writers keep sending events; long enough for several scrapes.
const LOAD_FOR: Duration = Duration::from_secs(8);
/// Concurrent writers per machine, each on its own instance, so group commits carry batches.
const WRITERS_PER_MACHINE: usize = 4;
/// What `$__rate_interval` becomes when panel queries run here (scrapes are 1 s apart).
const RATE_WINDOW: &str = "1m";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_every_dashboard_metric_and_every_panel_query_answers() {
    within(600, async {
        prometheus::binary();
        let exporter = metrics::install().expect("the recorder installs");
        let ext = Extensions {
            metrics: Some(Arc::new(exporter)),
            ..Extensions::default()
        };
        let s = TestServer::start_with(
            |c| {
                c.store.kind = StoreKind::Embedded;
                c.runtime.call_deadline_ms = 1_000;
                c.runtime.memory_limit_bytes = 32 << 20;
                c.effects.retry_interval_ms = effects_support::RETRY_MS;
                c.effects.settle_window_ms = effects_support::metrics_load::SETTLE_WINDOW_MS;
            },
            ext,
        )
        .await;
        let scrape = s.client.request(Method::GET, "/metrics", &[], "").await;
        assert_eq!(scrape.status, StatusCode::OK);
        assert_eq!(
            scrape.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );

        let prom = Prometheus::start(s.running().addr()).await;
        prom.wait_scrapes(1).await;
        drive_load(&s, &prom).await;
        let evicted = s.running().registry().evict_idle(Duration::ZERO);
        assert!(evicted > 0, "idle instances were evicted");
        prom.wait_scrapes(3).await;

        let mut failures = Vec::new();
        failures.extend(metrics_moved(&prom).await);
        failures.extend(panels_answer(&prom).await);
        assert!(
            failures.is_empty(),
            "{} checks failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        s.shutdown().await;
    })
    .await;
}

/// Creates a raw-wasm and a JavaScript toggle machine with instances, subscribes to each
/// instance over `/rt` (half of the subscribers asking for diffs), runs a writer per instance
/// for [`LOAD_FOR`], and meanwhile provokes each kind of refusal and fault in two rounds a few
/// scrapes apart: Prometheus computes no increase for a series whose first sample is already
/// above zero, so a counter must be seen before and after a change.
async fn drive_load(s: &TestServer, prom: &Prometheus) {
    let wasm = machines::toggle().await;
    machines::machine_with_version(s, "toggle-wasm", &wasm).await;
    let js = tokio::task::spawn_blocking(|| runtime_support::js_bundle("toggle-v4"))
        .await
        .unwrap();
    machines::machine_with_version(s, "toggle-js", &js).await;
    effects_support::metrics_load::deploy_all(s).await;

    let until = tokio::time::Instant::now() + LOAD_FOR;
    let (mut writers, mut readers) = (JoinSet::new(), JoinSet::new());
    for machine in ["toggle-wasm", "toggle-js"] {
        for n in 0..WRITERS_PER_MACHINE {
            let name = format!("w{n}");
            let token = s.token(SCOPES, json!({ "sub": name })).await;
            let created = s
                .client
                .authed(&token)
                .post(&format!("/machines/{machine}"), &json!({ "slug": name }))
                .await;
            assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
            let subscriber = subscribe(s, &token, machine, &name, n % 2 == 0).await;
            readers.spawn(read_until(subscriber, until));
            let client = s.client;
            writers.spawn(async move { write_until(client, &token, machine, &name, until).await });
        }
    }
    for round in 0..2 {
        refusals(s, round).await;
        faults(s, round).await;
        fetches(s).await;
        websocket_refusals(s).await;
        effects_support::metrics_load::round(s, round).await;
        prom.wait_scrapes(2).await;
    }
    while let Some(events) = writers.join_next().await {
        assert!(events.unwrap() > 0, "every writer got events accepted");
    }
    while let Some(frames) = readers.join_next().await {
        assert!(frames.unwrap() > 1, "every subscriber got updates pushed");
    }
}

/// Toggles instance `name` until `until`; returns how many events were accepted.
async fn write_until(
    client: http_support::Client,
    token: &str,
    machine: &str,
    name: &str,
    until: tokio::time::Instant,
) -> usize {
    let c = client.authed(token);
    let path = format!("/machines/{machine}/i/{name}/events");
    let mut accepted = 0;
    while tokio::time::Instant::now() < until {
        let r = c.post(&path, &json!({ "event": "toggle" })).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        accepted += 1;
    }
    accepted
}

/// A `/rt` connection subscribed to instance `name`, its first update already read.
async fn subscribe(
    s: &TestServer,
    token: &str,
    machine: &str,
    name: &str,
    diffs: bool,
) -> WsClient {
    let mut client = WsClient::connect(s.running().addr(), token).await;
    client
        .send(json!({
            "type": "subscribe-to-instance", "requestId": "s",
            "machineName": machine, "machineInstanceName": name, "diffs": diffs,
        }))
        .await;
    let first = client.next_json().await;
    assert_eq!(first["type"], "instance-update", "{first}");
    client
}

/// Reads pushed frames until `until`, then hangs up; returns how many arrived.
async fn read_until(mut client: WsClient, until: tokio::time::Instant) -> usize {
    let mut frames = 1;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(until, client.ws.next()).await {
        if matches!(message, Message::Text(_)) {
            frames += 1;
        }
    }
    frames
}

/// An upgrade with a token that is not one, and a connection closed for sending binary.
async fn websocket_refusals(s: &TestServer) {
    let addr = s.running().addr();
    let refused = WsClient::connect_url(addr, &rt_url(addr, "not-a-token")).await;
    assert!(
        matches!(refused, Err(ref r) if r.status == 401),
        "{:?}",
        refused.err()
    );
    let token = s.token(SCOPES, json!({ "sub": "b" })).await;
    let mut client = WsClient::connect(addr, &token).await;
    client.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    let close = client.close_frame().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1003);
}

/// An authorizer refusing a create, a read and an event; a missing instance; a path no
/// route has.
async fn refusals(s: &TestServer, round: usize) {
    let alice = format!("alice{round}");
    let alice_token = s.token(SCOPES, json!({ "sub": alice })).await;
    let mallory = s.token(SCOPES, json!({ "sub": "mallory" })).await;
    let (a, m) = (s.client.authed(&alice_token), s.client.authed(&mallory));
    let r = a
        .post("/machines/toggle-wasm", &json!({ "slug": alice }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let instance = format!("/machines/toggle-wasm/i/{alice}");
    let forbidden = [
        m.post("/machines/toggle-wasm", &json!({ "slug": "bob" }))
            .await,
        m.get(&instance).await,
        m.post(&format!("{instance}/events"), &json!({ "event": "toggle" }))
            .await,
    ];
    for r in forbidden {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    let r = a.get("/machines/toggle-wasm/i/nobody").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = a.get("/no/such/route").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

/// One deadline, one out-of-memory and one trap on the raw-wasm machine, and an action that
/// throws on the JavaScript one.
async fn faults(s: &TestServer, round: usize) {
    let name = format!("f{round}");
    let token = s.token(SCOPES, json!({ "sub": name })).await;
    let c = s.client.authed(&token);
    for machine in ["toggle-wasm", "toggle-js"] {
        let r = c
            .post(&format!("/machines/{machine}"), &json!({ "slug": name }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    for (machine, event) in [
        ("toggle-wasm", "spin"),
        ("toggle-wasm", "hog"),
        ("toggle-wasm", "crash"),
        ("toggle-js", "throw"),
    ] {
        let path = format!("/machines/{machine}/i/{name}/events");
        let r = c.post(&path, &json!({ "event": event })).await;
        assert!(
            r.status.is_client_error() || r.status.is_server_error(),
            "{machine} {event}: {} {:?}",
            r.status,
            r.body
        );
    }
}

/// A `fetch` that reaches this server's `/healthz` (allowed by address and port) and one the
/// address policy refuses, made through the host operations machines use, in this process.
async fn fetches(s: &TestServer) {
    let addr = s.running().addr();
    let url = format!("http://{addr}/healthz");
    let allowed = HostOps::new(&FetchConfig {
        allow: vec![addr.to_string()],
        ..FetchConfig::default()
    })
    .unwrap();
    let ok = allowed.fetch("toggle-js", &json!({ "url": url })).await;
    assert_eq!(ok["status"], 200, "{ok}");
    let denied = HostOps::new(&FetchConfig::default()).unwrap();
    let refused = denied.fetch("toggle-js", &json!({ "url": url })).await;
    assert_eq!(refused["ok"], false, "{refused}");
}

/// How a metric is expected to look after the load.
enum Expect {
    /// `sum(increase(…))` over the test is above zero.
    Moved(String),
    /// A gauge that was above zero at some scrape.
    WasPositive(&'static str),
    /// Present (at zero), because a single node with healthy storage never moves it.
    Present(&'static str),
}

fn expectations() -> Vec<Expect> {
    use Expect::{Moved, Present, WasPositive};
    let count = |name: &str| Moved(format!("{name}_count"));
    let mut list = vec![
        count(events::EVENT_DURATION_SECONDS),
        Moved(events::CREATIONS_TOTAL.to_owned()),
        Moved(events::LOADS_TOTAL.to_owned()),
        Moved(events::EVICTIONS_TOTAL.to_owned()),
        WasPositive(events::INSTANCES_HOT),
        Present(events::CONFLICT_RETRIES_TOTAL),
        Moved(format!(
            "{}{{op=\"read\"}}",
            events::AUTHORIZER_DENIALS_TOTAL
        )),
        Moved(format!(
            "{}{{op=\"write\"}}",
            events::AUTHORIZER_DENIALS_TOTAL
        )),
        Moved(hm::REQUESTS_TOTAL.to_owned()),
        count(hm::REQUEST_DURATION_SECONDS),
        Moved(format!(
            "{}{{kind=\"js\"}}",
            count_name(rm::CALL_DURATION_SECONDS)
        )),
        Moved(format!(
            "{}{{kind=\"wasm\"}}",
            count_name(rm::CALL_DURATION_SECONDS)
        )),
        Moved(rm::MODULE_CACHE_LOOKUPS_TOTAL.to_owned()),
        WasPositive(rm::GUESTS_LIVE),
        count(sm::COMMIT_DURATION_SECONDS),
        count(sm::BATCH_OPS),
        Present(sm::CAS_CONFLICTS_TOTAL),
        Present(sm::COMMIT_FAILURES_TOTAL),
        WasPositive(wm::CONNECTIONS),
        Moved(wm::UPGRADES_REFUSED_TOTAL.to_owned()),
        Moved(wm::FRAMES_SENT_TOTAL.to_owned()),
        Moved(format!("{}{{reason=\"binary\"}}", wm::CLOSES_TOTAL)),
        WasPositive(fm::SUBSCRIPTIONS),
        Moved(fm::UPDATES_PUBLISHED_TOTAL.to_owned()),
        Moved(format!("{}{{encoding=\"full\"}}", fm::PUSHES_TOTAL)),
        Moved(format!("{}{{encoding=\"patch\"}}", fm::PUSHES_TOTAL)),
        Present(fm::UPDATES_CONFLATED_TOTAL),
        Present(fm::FULL_FALLBACKS_TOTAL),
        Moved(format!("{}{{outcome=\"ok\"}}", fetch::REQUESTS_TOTAL)),
        Moved(format!("{}{{outcome=\"refused\"}}", fetch::REQUESTS_TOTAL)),
        count(fetch::DURATION_SECONDS),
        Moved(tm::TIMERS_ARMED_TOTAL.to_owned()),
        count(tm::TIMER_DUE_LAG_SECONDS),
        Moved(tm::TIMERS_DELIVERED_TOTAL.to_owned()),
        Moved(tm::TIMERS_STALE_TOTAL.to_owned()),
        Moved(tm::DELIVERY_FAILURES_TOTAL.to_owned()),
        Moved(format!("{}{{kind=\"timer\"}}", tm::DROPPED_TOTAL)),
        Moved(tm::OUTBOX_DELIVERED_TOTAL.to_owned()),
        WasPositive(rm::GUESTS_PINNED),
        Moved(format!(
            "{}{{outcome=\"started\"}}",
            services::SERVICES_TOTAL
        )),
        Moved(format!("{}{{outcome=\"done\"}}", services::SERVICES_TOTAL)),
        Moved(format!("{}{{outcome=\"error\"}}", services::SERVICES_TOTAL)),
        Moved(format!(
            "{}{{outcome=\"interrupted\"}}",
            services::SERVICES_TOTAL
        )),
        Moved(services::SETTLE_WINDOWS_CLOSED_TOTAL.to_owned()),
        count(services::SETTLE_SECONDS),
        // The raw-wasm toggle's deadline penalizes it, so its next calls are admitted.
        Moved(format!(
            "{}{{outcome=\"admitted\"}}",
            rm::CALLS_THROTTLED_TOTAL
        )),
    ];
    for outcome in ["accepted", "rejected", "timeout", "fault", "machine_error"] {
        let selector = format!("{}{{outcome=\"{outcome}\"}}", events::EVENTS_TOTAL);
        list.push(Moved(selector));
    }
    for fault in ["deadline", "oom", "trap"] {
        let selector = format!("{}{{fault=\"{fault}\"}}", rm::FAULTS_TOTAL);
        list.push(Moved(selector));
    }
    list
}

fn count_name(histogram: &str) -> String {
    format!("{histogram}_count")
}

/// The metric name at the start of a selector.
fn base_name(selector: &str) -> &str {
    let name = selector.split('{').next().unwrap_or(selector);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Checks every expectation; returns what failed.
async fn metrics_moved(prom: &Prometheus) -> Vec<String> {
    let expectations = expectations();
    let mut failures = Vec::new();
    for name in metrics::all_names() {
        let covered = expectations.iter().any(|e| match e {
            Expect::Moved(s) => base_name(s) == name,
            Expect::WasPositive(s) | Expect::Present(s) => *s == name,
        });
        if !covered {
            failures.push(format!("{name}: no expectation in this test"));
        }
    }
    for expectation in expectations {
        let (query, what) = match &expectation {
            Expect::Moved(s) => (format!("sum(increase({s}[5m]))"), "moved"),
            Expect::WasPositive(s) => (format!("max(max_over_time({s}[5m]))"), "was positive"),
            Expect::Present(s) => (format!("count({s})"), "present"),
        };
        let value = prom.query(&query).await.first().map(|s| s.value);
        if !value.is_some_and(|v| v > 0.0) {
            failures.push(format!("{query}: expected it {what}, got {value:?}"));
        }
    }
    failures
}

/// Every query of every panel, with the dashboard's variables set to "all"; returns the ones
/// that answered nothing (or only NaN).
async fn panels_answer(prom: &Prometheus) -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(include_str!("../grafana/dashboards/statewire.json")).unwrap();
    let mut failures = Vec::new();
    let mut queries = 0;
    for panel in all_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            let query = expr
                .replace("$__rate_interval", RATE_WINDOW)
                .replace("$instance", ".*")
                .replace("$machine", ".*");
            queries += 1;
            let series = prom.query(&query).await;
            if !series.iter().any(|s| s.value.is_finite()) {
                failures.push(format!("panel {title:?}: {query} answered {series:?}"));
            }
        }
    }
    assert!(
        queries >= 30,
        "the dashboard has its panels ({queries} queries)"
    );
    failures
}

/// Panels at the top level and inside rows, rows themselves left out.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}
