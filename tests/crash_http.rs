//! Crashes under load: many clients send events over HTTP to several instances while the real
//! `statewire serve` binary is killed with SIGKILL at a random moment, round after round, on
//! the same embedded data directory. After each restart, every event that was answered 200 is
//! in its instance's state and history exactly once, no event is applied twice, and nothing
//! appears that no client sent.
//!
//! The machine is `tests/fixtures/machines/ledger.js`, which appends the id of every `add` it
//! applies to `context.ids`.

mod http_support;
mod process_support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use process_support::{Serve, Served};
use rand::Rng as _;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use http_support::{machines, within, Client, TestServer};

const LEDGER: &str = include_str!("fixtures/machines/ledger.js");
const INSTANCES: usize = 4;
const CLIENTS_PER_INSTANCE: usize = 4;
const ROUNDS: usize = 8;
/// The kill comes this long after the round's first acknowledged event, at random.
const KILL_AFTER_MS: std::ops::Range<u64> = 20..700;

fn instance_name(i: usize) -> String {
    format!("ledger-{i}")
}

/// What one client sent during one round, in order.
#[derive(Debug)]
struct Sent {
    instance: usize,
    /// Ids answered 200, in the order they were sent.
    acked: Vec<String>,
    /// The id sent last, when the connection broke before its answer: it may or may not have
    /// been applied.
    unanswered: Option<String>,
}

/// What the instances must hold, built up over the rounds.
#[derive(Default)]
struct Expected {
    /// Per instance: ids that must be applied (acknowledged, or found applied earlier).
    applied: Vec<HashSet<String>>,
    /// Per instance: ids whose fate is not known yet.
    pending: Vec<HashSet<String>>,
    /// Everything each client sent in the last round, for the order check.
    last_round: Vec<Sent>,
}

/// Sets the ledger up with the in-process server on an embedded store: the machine, a key per
/// instance owner, and the instances. Returns the data directory and one token per instance.
async fn set_up() -> (tempfile::TempDir, Vec<String>, String) {
    let embedded = |c: &mut statewire::config::Config| {
        c.store.kind = statewire::config::StoreKind::Embedded;
    };
    let s = TestServer::start_with(embedded, Default::default()).await;
    machines::machine_with_version(&s, "ledger", LEDGER.as_bytes()).await;
    let mut tokens = Vec::new();
    for i in 0..INSTANCES {
        let name = instance_name(i);
        let token = s
            .token(&["instances.write", "state.read"], json!({ "sub": name }))
            .await;
        let r = s
            .client
            .authed(&token)
            .post("/machines/ledger", &json!({ "slug": name }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        tokens.push(token);
    }
    let admin_token = s.admin_token.clone();
    (s.shutdown().await, tokens, admin_token)
}

/// One keep-alive connection that reports failures instead of panicking.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Option<Connection> {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(connection);
        Some(Connection { sender })
    }

    /// Posts an event; `None` when the connection broke before a whole answer arrived.
    async fn send_event(&mut self, path: &str, token: &str, event: &Value) -> Option<StatusCode> {
        let body = json!({ "event": event }).to_string();
        let request = Request::post(path)
            .header("host", "statewire")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        self.sender.ready().await.ok()?;
        let response = self.sender.send_request(request).await.ok()?;
        let status = response.status();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
}

/// Sends `add` events one after the other until the server goes away.
async fn client(
    addr: SocketAddr,
    token: String,
    instance: usize,
    prefix: String,
    first_ack: Arc<Notify>,
) -> Sent {
    let path = format!("/machines/ledger/i/{}/events", instance_name(instance));
    let mut sent = Sent {
        instance,
        acked: Vec::new(),
        unanswered: None,
    };
    let Some(mut connection) = Connection::open(addr).await else {
        return sent;
    };
    for seq in 0.. {
        let id = format!("{prefix}-{seq}");
        let event = json!({"type": "add", "id": id});
        match connection.send_event(&path, &token, &event).await {
            Some(StatusCode::OK) => {
                sent.acked.push(id);
                first_ack.notify_one();
            }
            Some(status) => panic!("event {id} was answered {status}"),
            None => {
                sent.unanswered = Some(id);
                break;
            }
        }
    }
    sent
}

/// One round: load from every client, a SIGKILL at a random moment after the first
/// acknowledged event, and what each client saw.
async fn loaded_round(served: Served, tokens: &[String], round: usize) -> Vec<Sent> {
    let first_ack = Arc::new(Notify::new());
    let mut clients = Vec::new();
    for (instance, token) in tokens.iter().enumerate() {
        for c in 0..CLIENTS_PER_INSTANCE {
            let prefix = format!("r{round}-i{instance}-c{c}");
            clients.push(tokio::spawn(client(
                served.addr,
                token.clone(),
                instance,
                prefix,
                first_ack.clone(),
            )));
        }
    }
    let waited = tokio::time::timeout(Duration::from_secs(30), first_ack.notified()).await;
    assert!(
        waited.is_ok(),
        "no event was acknowledged in round {round}; server log:\n{}",
        served.log()
    );
    let delay_ms = rand::rng().random_range(KILL_AFTER_MS);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    served.kill_async().await;
    let mut sent = Vec::new();
    for client in clients {
        sent.push(client.await.expect("a client task"));
    }
    sent
}

/// Reads `path` and every further page, collecting the array under `field`.
async fn all_pages(client: &Client, token: &str, path: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?cursor={}", percent_encode(c)),
            None => path.to_owned(),
        };
        let page = client.authed(token).get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {:?}", page.body);
        let page = page.json();
        items.extend(page[field].as_array().expect("a page").iter().cloned());
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks every instance against what the clients saw, then settles the pending ids.
async fn verify(client: &Client, admin: &str, expected: &mut Expected) {
    for instance in 0..INSTANCES {
        let name = instance_name(instance);
        let view = client
            .authed(admin)
            .get(&format!("/machines/ledger/i/{name}/admin"))
            .await;
        assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
        let context = view.json()["context"].clone();
        let ids: Vec<String> = serde_json::from_value(context["ids"].clone()).expect("ids");
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            ids.len(),
            "{name}: an event was applied twice: {ids:?}"
        );
        assert_eq!(
            context["public"]["count"],
            ids.len(),
            "{name}: the count matches the ids"
        );

        let path = format!("/machines/ledger/i/{name}/events");
        let history = all_pages(client, admin, &path, "transitions").await;
        let mut from_history: Vec<String> = history
            .iter()
            .map(|t| t["event"]["id"].as_str().expect("an add event").to_owned())
            .collect();
        from_history.sort();
        let mut from_state = ids.clone();
        from_state.sort();
        assert_eq!(from_history, from_state, "{name}: history and state agree");

        let applied = &mut expected.applied[instance];
        let pending = &mut expected.pending[instance];
        for id in applied.iter() {
            assert!(
                distinct.contains(id),
                "{name}: acknowledged event {id} is lost"
            );
        }
        for id in &ids {
            assert!(
                applied.contains(id) || pending.contains(id),
                "{name}: {id} was applied but never sent, or its failure was already seen"
            );
        }
        // Pending ids are settled now: applied ones must stay, the others must never appear.
        for id in pending.drain() {
            if distinct.contains(&id) {
                applied.insert(id);
            }
        }

        // Each client's events were applied in the order it sent them.
        let position: HashMap<&String, usize> =
            ids.iter().enumerate().map(|(p, id)| (id, p)).collect();
        for sent in expected
            .last_round
            .iter()
            .filter(|s| s.instance == instance)
        {
            let positions: Vec<usize> = sent
                .acked
                .iter()
                .chain(&sent.unanswered)
                .filter_map(|id| position.get(id).copied())
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{name}: a client's events were applied out of order: {sent:?}"
            );
        }
    }
}

#[tokio::test]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    within(120, async {
        let (data, tokens, admin) = set_up().await;
        let logs = tempfile::tempdir().expect("log dir");
        let mut expected = Expected {
            applied: vec![HashSet::new(); INSTANCES],
            pending: vec![HashSet::new(); INSTANCES],
            last_round: Vec::new(),
        };
        let mut acked_total = 0;
        for round in 0..=ROUNDS {
            let log = logs.path().join(format!("round-{round}.log"));
            let served = Serve::embedded(data.path()).start(&log);
            let client = Client::new(served.addr);
            verify(&client, &admin, &mut expected).await;
            if round == ROUNDS {
                break;
            }
            let sent = loaded_round(served, &tokens, round).await;
            for s in &sent {
                acked_total += s.acked.len();
                expected.applied[s.instance].extend(s.acked.iter().cloned());
                expected.pending[s.instance].extend(s.unanswered.iter().cloned());
            }
            expected.last_round = sent;
        }
        let applied: usize = expected.applied.iter().map(HashSet::len).sum();
        println!("{ROUNDS} kills; {acked_total} events acknowledged, {applied} applied");
        assert!(acked_total >= ROUNDS, "every round acknowledged events");
    })
    .await;
}
