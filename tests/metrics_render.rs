//! The process-wide recorder renders what the runtime and the stores record where it happens.
//!
//! Tests in this file run in one process and share one registry, so each reads the change of
//! series that no other test here touches.

mod metrics_support;
mod runtime_support;

use std::collections::BTreeSet;
use std::time::Duration;

use metrics_support::{eventually, has, parse, sum};
use runtime_support::{init_input, toggle_code, within};
use serde_json::json;
use statewire::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use statewire::metrics::{self, runtime as rm, store as sm};
use statewire::runtime::RuntimeError;
use statewire::store::embedded::EmbeddedStore;
use statewire::store::{
    CasOutcome, Commit, Expect, InstanceRecord, InstanceStatus, Store, TransitionRecord,
};

fn render() -> String {
    metrics::install().expect("the recorder installs").render()
}

#[test]
fn installing_again_returns_the_same_registry() {
    let first = metrics::install().unwrap();
    let second = metrics::install().unwrap();
    let failures = |text: &str| sum(text, sm::COMMIT_FAILURES_TOTAL, &[("backend", "scylla")]);
    let before = failures(&second.render());
    sm::commit_failed(sm::Backend::Scylla);
    assert_eq!(failures(&first.render()), before + 1.0);
}

#[test]
fn series_with_known_labels_exist_at_zero_before_anything_happens() {
    let text = render();
    for fault in ["deadline", "oom", "trap"] {
        let series = parse(&text).into_iter().filter(|s| {
            s.name == rm::FAULTS_TOTAL && s.labels.get("fault").map(String::as_str) == Some(fault)
        });
        assert_eq!(series.count(), 2, "{fault}: one series per code kind");
    }
    assert!(has(&text, rm::MODULE_CACHE_LOOKUPS_TOTAL));
    assert!(has(&text, rm::GUESTS_LIVE));
    assert!(has(&text, &format!("{}_bucket", rm::CALL_DURATION_SECONDS)));
}

#[test]
fn the_exposition_parser_reads_escaped_label_values() {
    let text = "# HELP x a\n# TYPE x counter\nx{a=\"1\",b=\"q\\\"t\"} 3\ny 2.5\n";
    let samples = parse(text);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["b"], "q\"t");
    assert_eq!(sum(text, "x", &[("a", "1")]), 3.0);
    assert_eq!(sum(text, "y", &[]), 2.5);
}

#[test]
fn every_metric_is_documented() {
    let docs = include_str!("../docs/metrics.md");
    for name in metrics::all_names() {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/metrics.md does not describe {name}"
        );
    }
}

/// Every `statewire_…` name the dashboard's queries use.
fn dashboard_names() -> BTreeSet<String> {
    let dashboard = include_str!("../grafana/dashboards/statewire.json");
    let mut names = BTreeSet::new();
    let mut rest = dashboard;
    while let Some(start) = rest.find("statewire_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_shows_every_metric_and_only_known_ones() {
    let known = metrics::all_names();
    let used = dashboard_names();
    for name in &used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|b| known.contains(b)))
            .unwrap_or(name);
        assert!(
            known.contains(&base),
            "the dashboard queries unknown {name}"
        );
    }
    for name in known {
        let shown = ["", "_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| used.contains(&format!("{name}{suffix}")));
        assert!(shown, "the dashboard does not show {name}");
    }
}

#[tokio::test]
async fn guest_calls_faults_cache_lookups_and_live_guests_are_recorded() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let wasm_calls = |text: &str, op: &str| {
            let name = format!("{}_count", rm::CALL_DURATION_SECONDS);
            sum(text, &name, &[("op", op), ("kind", "wasm")])
        };
        let traps = |text: &str| {
            sum(
                text,
                rm::FAULTS_TOTAL,
                &[("fault", "trap"), ("kind", "wasm")],
            )
        };
        let lookups = |text: &str, result: &str| {
            sum(text, rm::MODULE_CACHE_LOOKUPS_TOTAL, &[("result", result)])
        };
        let live = |text: &str| sum(text, rm::GUESTS_LIVE, &[]);
        let before = render();

        let rt = runtime_support::runtime(dir.path());
        let first = rt.init(&code, &init_input("a")).await.unwrap();
        let on = rt
            .transition(&code, &first.snapshot, &json!({"type": "toggle"}))
            .await
            .unwrap();
        assert!(
            live(&render()) > live(&before),
            "the warm guest is counted while it lives"
        );
        let crashed = rt
            .transition(&code, &on.snapshot, &json!({"type": "crash"}))
            .await;
        assert!(matches!(crashed, Err(RuntimeError::Trap(_))), "{crashed:?}");
        let after = render();

        assert_eq!(
            wasm_calls(&after, "init") - wasm_calls(&before, "init"),
            1.0
        );
        assert_eq!(
            wasm_calls(&after, "transition") - wasm_calls(&before, "transition"),
            2.0
        );
        assert_eq!(traps(&after) - traps(&before), 1.0);
        assert_eq!(lookups(&after, "miss") - lookups(&before, "miss"), 1.0);

        let again = runtime_support::runtime(dir.path());
        again.init(&code, &init_input("b")).await.unwrap();
        let reopened = render();
        assert_eq!(
            lookups(&reopened, "hit_disk") - lookups(&after, "hit_disk"),
            1.0,
            "a second runtime on the same cache directory loads the compiled module"
        );

        drop((rt, again));
        let back_to_zero =
            eventually(Duration::from_secs(10), || live(&render()) == live(&before)).await;
        assert!(
            back_to_zero,
            "the live-guest gauge returns to where it was once both runtimes are gone"
        );
    })
    .await;
}

fn record(version: u64) -> InstanceRecord {
    InstanceRecord {
        machine_version: MachineVersionId::generate(),
        desired_machine_version: None,
        status: InstanceStatus::Running,
        version,
        ts_ms: 1_700_000_000_000,
        snapshot: "{}".to_owned(),
        state: json!("idle"),
        context: json!({}),
        tags: Vec::new(),
        done: false,
        write_id: uuid::Uuid::new_v4(),
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
        effects: Default::default(),
    }
}

fn create(key: &InstanceKey) -> Commit {
    Commit {
        key: key.clone(),
        expect: Expect::Absent,
        next: record(1),
        transition: Some(TransitionRecord {
            version: 1,
            created_at_ms: 1_700_000_000_000,
            event: json!({"type": "xstate.init"}),
            state: json!("idle"),
        }),
    }
}

#[tokio::test]
async fn embedded_commits_record_duration_batch_size_and_conflicts() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let key = InstanceKey::new(
            MachineName::parse("metered").unwrap(),
            InstanceName::parse("one").unwrap(),
        );
        let embedded = [("backend", "embedded")];
        let commits = |text: &str| {
            let name = format!("{}_count", sm::COMMIT_DURATION_SECONDS);
            sum(text, &name, &embedded)
        };
        let ops = |text: &str| sum(text, &format!("{}_sum", sm::BATCH_OPS), &embedded);
        let conflicts = |text: &str| sum(text, sm::CAS_CONFLICTS_TOTAL, &embedded);
        let before = render();

        let applied = store.commit(create(&key)).await.unwrap();
        assert_eq!(applied, CasOutcome::Applied { version: 1 });
        let refused = store.commit(create(&key)).await.unwrap();
        assert!(
            matches!(refused, CasOutcome::Conflict { .. }),
            "{refused:?}"
        );
        let after = render();

        assert_eq!(commits(&after) - commits(&before), 2.0);
        assert_eq!(ops(&after) - ops(&before), 2.0);
        assert_eq!(conflicts(&after) - conflicts(&before), 1.0);
    })
    .await;
}
