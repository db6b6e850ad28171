//! Bad input over HTTP: every refusal answers its documented status and code AND leaves
//! everything as it was: the instance's full state, its history, the instance listing and the
//! machine. The machine is `tests/fixtures/machines/ledger.js`, a JavaScript machine with
//! events that throw, loop, exhaust memory and grow the context.

mod http_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Method, StatusCode};
use http_support::client::Reply;
use http_support::{machines, within, TestServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use statewire::auth::keys::mint_key;

const LEDGER: &str = include_str!("fixtures/machines/ledger.js");
/// The instance every test works on; its owner is the only user its authorizers let in.
const OWNER: &str = "owner";
const EVENTS: &str = "/machines/ledger/i/owner/events";
const USER_SCOPES: &[&str] = &["instances.write", "state.read"];
/// The runtime's limits in these tests: short, so that the loop and the bomb end quickly.
const DEADLINE_MS: u64 = 1_500;
const MEMORY_LIMIT_BYTES: u64 = 48 << 20;

/// A server with the ledger machine and instance `owner` holding one entry.
struct Ledger {
    s: TestServer,
    owner_token: String,
}

impl Ledger {
    async fn start() -> Ledger {
        let s = TestServer::start_with(
            |c| {
                c.runtime.call_deadline_ms = DEADLINE_MS;
                c.runtime.memory_limit_bytes = MEMORY_LIMIT_BYTES;
            },
            Default::default(),
        )
        .await;
        machines::machine_with_version(&s, "ledger", LEDGER.as_bytes()).await;
        let owner_token = s.token(USER_SCOPES, json!({ "sub": OWNER })).await;
        let ledger = Ledger { s, owner_token };
        let created = ledger
            .owner_post("/machines/ledger", &json!({ "slug": OWNER }))
            .await;
        assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
        ledger.add("first").await;
        ledger
    }

    async fn owner_post(&self, path: &str, body: &Value) -> Reply {
        self.s
            .client
            .authed(&self.owner_token)
            .post(path, body)
            .await
    }

    /// Sends `add` with `id` as the owner; it must be applied.
    async fn add(&self, id: &str) -> Value {
        let r = self
            .owner_post(EVENTS, &json!({"event": {"type": "add", "id": id}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()
    }

    /// Sends `body` (raw bytes) to `path` as the owner, with the client's headers.
    async fn owner_raw(&self, path: &str, body: &'static str) -> Reply {
        let auth = format!("Bearer {}", self.owner_token);
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        self.s
            .client
            .request(Method::POST, path, &headers, body)
            .await
    }

    /// Everything a client or the operator can read about the ledger.
    async fn observe(&self) -> Value {
        let admin = self.s.admin();
        let mut seen = serde_json::Map::new();
        for path in [
            "/machines/ledger",
            "/machines/ledger/v",
            "/machines/ledger/i",
            "/machines/ledger/i/owner/admin",
            "/machines/ledger/i/owner/events",
        ] {
            let r = admin.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
            seen.insert(path.to_owned(), r.json());
        }
        let public = self
            .s
            .client
            .authed(&self.owner_token)
            .get("/machines/ledger/i/owner")
            .await;
        seen.insert("state".to_owned(), public.json());
        Value::Object(seen)
    }

    /// Asserts that `reply` is the documented refusal and that nothing changed since `before`.
    async fn refused(&self, what: &str, reply: Reply, status: u16, code: &str, before: &Value) {
        assert_eq!(reply.status.as_u16(), status, "{what}: {:?}", reply.body);
        assert_eq!(reply.code(), code, "{what}: {:?}", reply.body);
        assert!(
            reply.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{what}: an error message is given"
        );
        assert_eq!(&self.observe().await, before, "{what} changed something");
    }

    /// The history's length: one transition per applied event.
    async fn history_len(&self) -> usize {
        let history = self.s.admin().get(EVENTS).await.json();
        history["transitions"]
            .as_array()
            .expect("transitions")
            .len()
    }

    async fn shutdown(self) {
        self.s.shutdown().await;
    }
}

fn now_s() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    since.as_secs() as i64
}

/// An HS256 token shaped like `@statebacked/token`'s, with the given `kid`, secret and `exp`.
fn hs256(kid: &str, secret: &str, exp: i64) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = None;
    header.kid = Some(kid.to_owned());
    let claims = json!({
        "act": {"sub": OWNER},
        "aud": "https://api.statebacked.dev/",
        "iss": "https://app.example/",
        "iat": now_s(),
        "exp": exp,
    });
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn unsigned(kid: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = part(json!({"alg": "none", "kid": kid}));
    let claims = part(json!({"act": {"sub": OWNER}, "exp": now_s() + 3600}));
    format!("{header}.{claims}.")
}

#[tokio::test]
async fn malformed_or_misshapen_events_are_400_and_change_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        let before = l.observe().await;
        for body in [
            "{\"event\": ",
            "not json",
            "",
            "[]",
            "{}",
            "{\"event\": 7}",
            "{\"event\": \"\"}",
            "{\"event\": {\"id\": \"no-type\"}}",
            "{\"event\": {\"type\": 5}}",
        ] {
            let r = l.owner_raw(EVENTS, body).await;
            l.refused(body, r, 400, "invalid-parameter", &before).await;
        }
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_creates_are_400_and_create_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        let before = l.observe().await;
        let bodies = [
            "{\"slug\": ",
            "{\"slug\": 5}",
            "{\"slug\": \"x\", \"context\": [1]}",
            "{\"slug\": \"x\", \"context\": \"text\"}",
            "{\"slug\": \"x\", \"machineVersionId\": \"garbage\"}",
        ];
        for body in bodies {
            let r = l.owner_raw("/machines/ledger", body).await;
            l.refused(body, r, 400, "invalid-parameter", &before).await;
        }
        let r = l.s.admin().get("/machines/ledger/i/x/admin").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn names_breaking_the_pattern_are_400_and_create_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        let before = l.observe().await;
        let long = "a".repeat(129);
        for slug in ["has space", "", "dot.ted", "slash/ed", "ünïcode", &long] {
            let r = l
                .owner_post("/machines/ledger", &json!({ "slug": slug }))
                .await;
            assert_eq!(r.json()["parameter"], "slug", "{slug:?}");
            l.refused(slug, r, 400, "invalid-parameter", &before).await;
        }
        let r = l
            .owner_post(
                "/machines/ledger/i/dot.ted/events",
                &json!({"event": "add"}),
            )
            .await;
        assert_eq!(r.json()["parameter"], "machineInstanceName");
        l.refused("bad name in the path", r, 400, "invalid-parameter", &before)
            .await;
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_machines_and_versions_are_404_and_change_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        // Another machine, whose version the ledger does not have.
        let foreign = machines::machine_with_version(&l.s, "other", LEDGER.as_bytes()).await;
        let before = l.observe().await;
        let event = json!({"event": {"type": "add", "id": "nowhere"}});

        let r = l.owner_post("/machines/nope/i/owner/events", &event).await;
        l.refused("event to an unknown machine", r, 404, "not-found", &before)
            .await;
        let r = l
            .owner_post("/machines/nope", &json!({ "slug": OWNER }))
            .await;
        l.refused("create on an unknown machine", r, 404, "not-found", &before)
            .await;
        for version in ["ver_AAAAAAAAAAAAAAAAAAAAAA", foreign.as_str()] {
            let create = json!({"slug": "second", "machineVersionId": version});
            let r = l.owner_post("/machines/ledger", &create).await;
            l.refused(version, r, 404, "not-found", &before).await;
        }
        let r = l.s.admin().get("/machines/other/i").await;
        assert_eq!(r.json()["instances"], json!([]));
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_tokens_are_401_and_change_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        // A real key with every scope the owner needs, to forge tokens around it.
        let key = mint_key("forged".to_owned(), vec!["instances.write".to_owned()]);
        l.s.store().put_key(&key).await.unwrap();
        let unknown = mint_key("never-stored".to_owned(), vec![]);
        let kid = key.id.to_string();
        let before = l.observe().await;

        let tokens = [
            ("garbage", "not-a-jwt".to_owned()),
            ("expired", hs256(&kid, &key.secret, now_s() - 120)),
            ("wrong secret", hs256(&kid, "sbsec_guessed", now_s() + 3600)),
            ("alg none", unsigned(&kid)),
            (
                "unknown key id",
                hs256(&unknown.id.to_string(), &unknown.secret, now_s() + 3600),
            ),
            ("no key id", hs256("", &key.secret, now_s() + 3600)),
        ];
        let event = json!({"event": {"type": "add", "id": "forged"}});
        for (what, token) in &tokens {
            let r = l.s.client.authed(token).post(EVENTS, &event).await;
            l.refused(what, r, 401, "unauthorized", &before).await;
        }
        let r =
            l.s.client
                .request(Method::POST, EVENTS, &[], event.to_string())
                .await;
        l.refused("no token", r, 401, "unauthorized", &before).await;

        // The same key signing properly is accepted: the refusals were about the tokens.
        let good = hs256(&kid, &key.secret, now_s() + 3600);
        let r = l.s.client.authed(&good).post(EVENTS, &event).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_missing_the_scope_is_403_and_changes_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        let reader = l.s.token(&["state.read"], json!({ "sub": OWNER })).await;
        let before = l.observe().await;
        let c = l.s.client.authed(&reader);
        let r = c
            .post(EVENTS, &json!({"event": {"type": "add", "id": "x"}}))
            .await;
        l.refused(
            "event without instances.write",
            r,
            403,
            "missing-scope",
            &before,
        )
        .await;
        let r = c.post("/machines/ledger", &json!({"slug": "x"})).await;
        l.refused(
            "create without instances.write",
            r,
            403,
            "missing-scope",
            &before,
        )
        .await;
        let pause = json!({"status": "paused"});
        let r = c.put("/machines/ledger/i/owner/status", &pause).await;
        l.refused(
            "pause without instances.admin",
            r,
            403,
            "missing-scope",
            &before,
        )
        .await;
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn contexts_over_400_kb_are_413_at_create_and_from_a_transition() {
    within(180, async {
        let l = Ledger::start().await;
        let before = l.observe().await;
        // Under the 512 kB body limit, over the 400 kB context limit.
        let blob = "x".repeat(450_000);
        let create = json!({"slug": "big", "context": {"blob": blob}});
        let big = l.s.token(USER_SCOPES, json!({"sub": "big"})).await;
        let r =
            l.s.client
                .authed(&big)
                .post("/machines/ledger", &create)
                .await;
        l.refused(
            "a large initial context",
            r,
            413,
            "context-too-large",
            &before,
        )
        .await;

        let grow = json!({"event": {"type": "grow", "bytes": 450_000}});
        let r = l.owner_post(EVENTS, &grow).await;
        l.refused(
            "a transition growing the context",
            r,
            413,
            "context-too-large",
            &before,
        )
        .await;

        // A context under the limit is fine.
        let grow = json!({"event": {"type": "grow", "bytes": 300_000}});
        let r = l.owner_post(EVENTS, &grow).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        l.shutdown().await;
    })
    .await;
}

/// Sends `event` (one of the ledger's misbehaving events), checks the refusal and that the
/// next ordinary event is applied on top of the unchanged state.
async fn misbehaves(l: &Ledger, event: &str, status: u16, code: &str) {
    let before = l.observe().await;
    let r = l.owner_post(EVENTS, &json!({ "event": event })).await;
    l.refused(event, r, status, code, &before).await;
    let history = l.history_len().await;
    let after = l.add("after").await;
    assert_eq!(after["publicContext"]["count"], 2);
    assert_eq!(l.history_len().await, history + 1);
    let admin = l.s.admin().get("/machines/ledger/i/owner/admin").await;
    assert_eq!(admin.json()["context"]["ids"], json!(["first", "after"]));
}

#[tokio::test]
async fn a_machine_that_throws_is_422_and_changes_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        misbehaves(&l, "throw", 422, "machine-error").await;
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_machine_that_loops_is_stopped_at_the_deadline_and_changes_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        let started = std::time::Instant::now();
        misbehaves(&l, "spin", 422, "machine-timeout").await;
        assert!(started.elapsed() >= Duration::from_millis(DEADLINE_MS));
        l.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_cap_and_changes_nothing() {
    within(180, async {
        let l = Ledger::start().await;
        misbehaves(&l, "hog", 422, "machine-out-of-memory").await;
        l.shutdown().await;
    })
    .await;
}
