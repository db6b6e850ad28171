//! Instances over HTTP with a real machine (the raw-wasm toggle): create, read, events,
//! pause, history, admin view, desired version, delete, and concurrent events.

mod http_support;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::StatusCode;
use http_support::machines;
use http_support::{within, TestServer};
use serde_json::{json, Value};

const USER_SCOPES: &[&str] = &["instances.write", "state.read", "events.write"];

/// A server with the toggle machine as `toggle`'s current version.
async fn toggle_server() -> (TestServer, String) {
    let s = TestServer::start().await;
    let code = machines::toggle().await;
    let version = machines::machine_with_version(&s, "toggle", &code).await;
    (s, version)
}

/// A token the toggle's authorizers accept for instance `name`.
async fn user(s: &TestServer, name: &str) -> String {
    s.token(USER_SCOPES, json!({"sub": name})).await
}

/// Creates toggle instance `name` as the caller of `c`.
async fn create(c: &http_support::client::Authed<'_>, name: &str) {
    let r = c.post("/machines/toggle", &json!({ "slug": name })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn create_answers_the_state_with_only_the_public_context() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "a").await;
        let r = s
            .client
            .authed(&token)
            .post(
                "/machines/toggle",
                &json!({"slug": "a", "context": {"secret": 1}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let state = r.json();
        assert_eq!(
            keys_of(&state),
            ["done", "publicContext", "state", "tags", "ts"]
        );
        assert_eq!(state["state"], "off");
        assert_eq!(state["publicContext"]["toggleCount"], 1);
        assert!(state["publicContext"].get("secret").is_none());
        assert_eq!(state["done"], false);
        assert!(state["ts"].as_i64().unwrap() > 1_600_000_000_000);

        let got = s.client.authed(&token).get("/machines/toggle/i/a").await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.json(), state);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn duplicate_creates_are_409_and_missing_instances_404() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "a").await;
        let c = s.client.authed(&token);
        create(&c, "a").await;
        let r = c.post("/machines/toggle", &json!({"slug": "a"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "invalid-state");

        let r = c.get("/machines/toggle/i/nobody").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .post(
                "/machines/toggle/i/nobody/events",
                &json!({"event": "toggle"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c.post("/machines/unknown", &json!({"slug": "a"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .post(
                "/machines/toggle",
                &json!({"slug": "b", "machineVersionId": "ver_AAAAAAAAAAAAAAAAAAAAAA"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn authorizers_refuse_with_403_rejected_by_machine_authorizer() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let mallory = user(&s, "mallory").await;
        let m = s.client.authed(&mallory);
        let r = m.post("/machines/toggle", &json!({"slug": "alice"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "rejected-by-machine-authorizer");

        let alice = user(&s, "alice").await;
        let a = s.client.authed(&alice);
        create(&a, "alice").await;
        let r = m.get("/machines/toggle/i/alice").await;
        assert_eq!(r.code(), "rejected-by-machine-authorizer");
        let r = m
            .post(
                "/machines/toggle/i/alice/events",
                &json!({"event": "toggle"}),
            )
            .await;
        assert_eq!(r.code(), "rejected-by-machine-authorizer");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_admin_acting_as_a_user_is_authorized_as_that_user() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let auth = format!("Bearer {}", s.admin_token);
        let create = |act: &'static str| {
            let auth = auth.clone();
            let client = s.client;
            async move {
                let headers = [
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                    ("x-statebacked-act", act),
                ];
                let body = serde_json::to_vec(&json!({"slug": "bob"})).unwrap();
                client
                    .request(http::Method::POST, "/machines/toggle", &headers, body)
                    .await
            }
        };
        let r = create(r#"{"sub": "eve"}"#).await;
        assert_eq!(r.code(), "rejected-by-machine-authorizer");
        let r = create(r#"{"sub": "bob"}"#).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

        let user = user(&s, "bob").await;
        let r = s
            .client
            .request(
                http::Method::GET,
                "/machines/toggle/i/bob",
                &[
                    ("authorization", &format!("Bearer {user}")),
                    ("x-statebacked-act", r#"{"sub": "bob"}"#),
                ],
                "",
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "only admins may act as others"
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn events_move_the_state_and_ts_strictly_increases() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "a").await;
        let c = s.client.authed(&token);
        let created = c
            .post("/machines/toggle", &json!({"slug": "a"}))
            .await
            .json();
        let on = c
            .post("/machines/toggle/i/a/events", &json!({"event": "toggle"}))
            .await;
        assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
        let on = on.json();
        assert_eq!(on["state"], "on");
        let off = c
            .post(
                "/machines/toggle/i/a/events",
                &json!({"event": {"type": "toggle"}}),
            )
            .await
            .json();
        assert_eq!(off["state"], "off");
        assert_eq!(off["publicContext"]["toggleCount"], 2);
        let ts = |v: &Value| v["ts"].as_i64().unwrap();
        assert!(ts(&created) < ts(&on) && ts(&on) < ts(&off));

        for bad in [
            json!({"event": ""}),
            json!({"event": {"kind": 1}}),
            json!({}),
        ] {
            let r = c.post("/machines/toggle/i/a/events", &bad).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn paused_instances_refuse_events_with_409_until_resumed() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "a").await;
        let c = s.client.authed(&token);
        create(&c, "a").await;
        let r = s
            .admin()
            .put("/machines/toggle/i/a/status", &json!({"status": "paused"}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        let r = c
            .post("/machines/toggle/i/a/events", &json!({"event": "toggle"}))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "invalid-state");
        let admin = s.admin().get("/machines/toggle/i/a/admin").await.json();
        assert_eq!(admin["status"], "paused");

        let r = s
            .admin()
            .put("/machines/toggle/i/a/status", &json!({"status": "running"}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .post("/machines/toggle/i/a/events", &json!({"event": "toggle"}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s
            .admin()
            .put("/machines/toggle/i/a/status", &json!({"status": "asleep"}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn admin_routes_show_history_full_state_and_the_listing() {
    within(120, async {
        let (s, version) = toggle_server().await;
        let token = user(&s, "a").await;
        let c = s.client.authed(&token);
        create(&c, "a").await;
        for _ in 0..3 {
            let r = c
                .post("/machines/toggle/i/a/events", &json!({"event": "toggle"}))
                .await;
            assert_eq!(r.status, StatusCode::OK);
        }
        let history = s.admin().get("/machines/toggle/i/a/events").await.json();
        let transitions = history["transitions"].as_array().unwrap();
        assert_eq!(transitions.len(), 3);
        assert_eq!(transitions[0]["event"], json!({"type": "toggle"}));
        assert_eq!(transitions[0]["state"], "on");
        assert!(transitions[0]["createdAt"].as_str().unwrap().ends_with('Z'));

        let admin = s.admin().get("/machines/toggle/i/a/admin").await.json();
        assert_eq!(admin["state"], "on");
        assert_eq!(admin["status"], "running");
        assert_eq!(admin["machineVersion"]["id"], version);
        assert!(admin["context"].is_object());
        assert!(admin.get("desiredMachineVersion").is_none());

        let list = s.admin().get("/machines/toggle/i").await.json();
        let row = &list["instances"][0];
        assert_eq!(row["slug"], "a");
        assert_eq!(row["status"], "running");
        assert_eq!(row["machineVersion"]["id"], version);

        let r = c.get("/machines/toggle/i/a/events").await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "history needs instances.admin"
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn desired_version_is_201_for_the_own_version_and_no_migration_path_otherwise() {
    within(120, async {
        let (s, version) = toggle_server().await;
        let token = user(&s, "a").await;
        let c = s.client.authed(&token);
        create(&c, "a").await;
        let r = c
            .put(
                "/machines/toggle/i/a/v",
                &json!({"targetMachineVersionId": version}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.body.is_empty());

        let code = machines::toggle().await;
        let newer = machines::add_version(&s, "toggle", &code, false).await;
        let r = c
            .put(
                "/machines/toggle/i/a/v",
                &json!({"targetMachineVersionId": newer}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "no-migration-path");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn deleting_an_instance_needs_its_confirmation_and_frees_the_machine() {
    within(120, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "a").await;
        create(&s.client.authed(&token), "a").await;
        let hmac = |key: &str, data: &str| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(data.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        };
        let machine_delete = json!({"dangerDataWillBeDeletedForever": true,
            "hmacSha256OfMachineNameWithMachineNameKey": hmac("toggle", "toggle")});
        let r = s.admin().delete("/machines/toggle", &machine_delete).await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "machines with instances stay"
        );

        let wrong = json!({"dangerDataWillBeDeletedForever": true,
            "hmacSha256OfMachineInstanceNameWithMachineNameKey": hmac("a", "toggle")});
        let r = s.admin().delete("/machines/toggle/i/a", &wrong).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let right = json!({"dangerDataWillBeDeletedForever": true,
            "hmacSha256OfMachineInstanceNameWithMachineNameKey": hmac("toggle", "a")});
        let r = s.admin().delete("/machines/toggle/i/a", &right).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.client
                .authed(&token)
                .get("/machines/toggle/i/a")
                .await
                .status,
            404
        );
        let r = s.admin().delete("/machines/toggle/i/a", &right).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let r = s.admin().delete("/machines/toggle", &machine_delete).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_events_on_one_instance_are_serialized_and_none_is_lost() {
    within(180, async {
        let (s, _) = toggle_server().await;
        let token = user(&s, "hot").await;
        let c = s.client.authed(&token);
        create(&c, "hot").await;

        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let client = s.client;
            let token = token.clone();
            sends.spawn(async move {
                let r = client
                    .authed(&token)
                    .post("/machines/toggle/i/hot/events", &json!({"event": "toggle"}))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                r.json()["ts"].as_i64().unwrap()
            });
        }
        let mut stamps = Vec::new();
        while let Some(ts) = sends.join_next().await {
            stamps.push(ts.unwrap());
        }
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), 50, "every event got its own ts");

        // 50 toggles from `off` end in `off`, having entered `off` 25 more times.
        let state = c.get("/machines/toggle/i/hot").await.json();
        assert_eq!(state["state"], "off");
        assert_eq!(state["publicContext"]["toggleCount"], 26);
        let history = s.admin().get("/machines/toggle/i/hot/events").await.json();
        assert_eq!(history["transitions"].as_array().unwrap().len(), 50);
        s.shutdown().await;
    })
    .await;
}
