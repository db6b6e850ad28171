//! Services across SIGKILL: the real `statewire serve` binary is killed while a service runs
//! and started again on the same embedded data directory. The service is never run twice;
//! its instance gets the owed error event at start, without a client asking; and a custom
//! action of the last step is not replayed by the restart.

mod effects_support;
mod http_support;
mod process_support;
mod services_support;

use std::path::Path;
use std::time::{Duration, Instant};

use effects_support::{deployed_on_disk, state_of, stored};
use http_support::{within, Client};
use process_support::{Serve, Served};
use serde_json::{json, Value};
use services_support::{Backend, SERVICES_V4};

fn serve(dir: &Path, log: &Path) -> Served {
    let mut serve = Serve::embedded(dir);
    serve.env = vec![
        ("STATEWIRE_FETCH_ALLOW", "127.0.0.1".to_owned()),
        ("STATEWIRE_LOG", "statewire=info".to_owned()),
    ];
    serve.start(log)
}

async fn post(client: &Client, admin: &str, path: &str, body: Value) -> Value {
    let r = client.authed(admin).post(path, &body).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.json()
}

async fn wait_until(what: &str, log: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Event types of the stored history, oldest first, read once no server runs.
async fn stored_history(dir: &Path, instance: &str) -> Vec<String> {
    let (record, history) = stored(dir, "svc", instance).await;
    assert!(
        record.effects.services.is_empty(),
        "{:?}",
        record.effects.services
    );
    history
        .iter()
        .map(|t| t.event["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_service_cut_off_by_sigkill_fails_once_the_server_is_back() {
    within(180, async {
        let (dir, admin) = deployed_on_disk("svc", SERVICES_V4).await;
        let backend = Backend::start().await;
        let logs = tempfile::tempdir().unwrap();
        let first = serve(dir.path(), &logs.path().join("first.log"));
        let client = Client::new(first.addr);
        post(
            &client,
            &admin,
            "/machines/svc",
            json!({"slug": "h", "context": {"base": backend.base}}),
        )
        .await;
        // The reply would wait for the window; the server dies before it.
        let (addr, token) = (first.addr, admin.clone());
        let pending = tokio::spawn(async move {
            Client::new(addr)
                .authed(&token)
                .post(
                    "/machines/svc/i/h/events",
                    &json!({"event": {"type": "HANG"}}),
                )
                .await
        });
        wait_until(
            "the service's request",
            || first.log(),
            || backend.count("/hang") == 1,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.kill_async().await;
        pending.abort();

        let second = serve(dir.path(), &logs.path().join("second.log"));
        let client = Client::new(second.addr);
        let started = Instant::now();
        while state_of(&client, &admin, "svc", "h").await != json!("failed") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{}",
                second.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("failed {:?} after the restart", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(backend.count("/hang"), 1, "the service ran twice");
        second.kill_async().await;
        assert_eq!(
            stored_history(dir.path(), "h").await,
            ["HANG", "error.platform.hang"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_restart_replays_no_custom_action() {
    within(180, async {
        let (dir, admin) = deployed_on_disk("svc", SERVICES_V4).await;
        let backend = Backend::start().await;
        let logs = tempfile::tempdir().unwrap();
        let first = serve(dir.path(), &logs.path().join("first.log"));
        let client = Client::new(first.addr);
        post(
            &client,
            &admin,
            "/machines/svc",
            json!({"slug": "n", "context": {"base": backend.base}}),
        )
        .await;
        let event = json!({"event": {"type": "COUNT"}});
        post(&client, &admin, "/machines/svc/i/n/events", event).await;
        wait_until(
            "the first count",
            || first.log(),
            || backend.count("/count") == 1,
        )
        .await;
        first.kill_async().await;

        let second = serve(dir.path(), &logs.path().join("second.log"));
        let client = Client::new(second.addr);
        assert_eq!(
            state_of(&client, &admin, "svc", "n").await,
            json!("counted")
        );
        let back = json!({"event": {"type": "BACK"}});
        post(&client, &admin, "/machines/svc/i/n/events", back).await;
        let again = json!({"event": {"type": "COUNT"}});
        post(&client, &admin, "/machines/svc/i/n/events", again).await;
        wait_until(
            "the second count",
            || second.log(),
            || backend.count("/count") == 2,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(backend.count("/count"), 2, "a count was replayed");
        second.kill_async().await;
        assert_eq!(
            stored_history(dir.path(), "n").await,
            ["COUNT", "BACK", "COUNT"]
        );
    })
    .await;
}
