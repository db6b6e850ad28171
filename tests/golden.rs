//! The golden suite: every machine in `tests/machines/src`, built exactly as smply builds it,
//! runs through the real runtime (wasmer and the JavaScript guest), and every step must equal
//! what the real xstate package computes under Node: state value, full context, tags, done,
//! the whole normalized effect list, and the authorizers' answers.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::machines::{suite, ExpectedMachine, ExpectedStep, Scenario};
use serde_json::{json, Value};
use statewire::runtime::{InitInput, MachineCode, Runtime, RuntimeConfig, Step};

/// Covers building the machines with Node on first use, compiling the guest, and every step.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

macro_rules! golden {
    ($($test:ident => $machine:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_machine($machine);
            }
        )*
        /// Machines that have a test above.
        const COVERED: &[&str] = &[$($machine),*];
    };
}

golden! {
    v4_nested_states_targetless_assigns_and_a_final_state_match_xstate => "v4-checkout",
    v4_parallel_regions_and_their_on_done_match_xstate => "v4-upload",
    v4_shallow_and_deep_history_match_xstate => "v4-player",
    v4_guards_on_event_data_and_sibling_regions_match_xstate => "v4-thermostat",
    v4_eventless_transitions_and_raised_events_match_xstate => "v4-wizard",
    v4_after_timers_and_delayed_sends_match_xstate => "v4-traffic",
    v4_creation_context_merge_and_authorizers_match_xstate => "v4-profile",
    v5_nested_states_reentry_and_a_final_state_match_xstate => "v5-checkout",
    v5_parallel_regions_and_their_on_done_match_xstate => "v5-upload",
    v5_shallow_and_deep_history_match_xstate => "v5-player",
    v5_guard_combinators_and_enqueued_actions_match_xstate => "v5-thermostat",
    v5_eventless_transitions_and_raised_events_match_xstate => "v5-wizard",
    v5_after_timers_and_delayed_raises_match_xstate => "v5-traffic",
    v5_creation_context_merge_and_authorizers_match_xstate => "v5-profile",
    v4_timers_sends_logs_and_custom_actions_match_xstate => "v4-effects",
    v4_services_children_and_persistent_instances_match_xstate => "v4-services",
    v5_timers_sends_logs_and_custom_actions_match_xstate => "v5-effects",
    v5_services_children_and_persistent_instances_match_xstate => "v5-services",
}

#[test]
fn every_golden_machine_has_a_test() {
    common::within(TEST_TIMEOUT, || {
        let suite = suite();
        let untested: Vec<&str> = suite
            .expected
            .machines
            .iter()
            .map(|m| m.name.as_str())
            .filter(|name| !COVERED.contains(name))
            .collect();
        assert!(untested.is_empty(), "machines without a test: {untested:?}");
        assert!(suite.expected.machines.len() >= 16);
        assert_eq!(suite.expected.xstate, json!({"4": "4.38.3", "5": "5.33.3"}));
    });
}

#[test]
fn a_snapshot_carries_history_into_a_fresh_runtime() {
    with_timeout(async {
        let suite = tokio::task::spawn_blocking(suite).await.expect("suite");
        for name in ["v4-player", "v5-player"] {
            let machine = suite.machine(name);
            let scenario = &machine.scenarios[0];
            let code = load_code(&suite.bundle_path(&machine.bundles[0]));
            let split = scenario.steps.len() / 2;

            let before = runtime();
            let mut step = before
                .init(&code, &init_input(scenario))
                .await
                .expect("init");
            for expected in &scenario.steps[1..split] {
                let event = expected.event.as_ref().expect("event");
                step = before
                    .transition(&code, &step.snapshot, event)
                    .await
                    .expect("step");
            }
            drop(before);

            // A new runtime has no guest that ever saw this instance: only the snapshot goes over.
            let after = runtime();
            let mut failures = Vec::new();
            for (i, expected) in scenario.steps.iter().enumerate().skip(split) {
                let event = expected.event.as_ref().expect("event");
                step = after
                    .transition(&code, &step.snapshot, event)
                    .await
                    .expect("step");
                compare_step(&format!("{name} step {i}"), &step, expected, &mut failures);
            }
            assert!(failures.is_empty(), "{}", failures.join("\n"));
        }
    });
}

#[test]
fn the_quickstart_toggle_runs_through_the_cli_as_documented() {
    common::within(TEST_TIMEOUT, quickstart_through_the_cli);
}

fn quickstart_through_the_cli() {
    let suite = suite();
    let bundle = suite.bundle_path("quickstart/toggle.js");
    let bundle = bundle.to_str().expect("UTF-8 path");
    let cache = cache_dir();
    let timeout = Duration::from_secs(120);

    let checked = common::cli::statewire(&["machine", "check", bundle], &cache, timeout);
    assert_eq!(checked.code, Some(0), "{checked:?}");
    assert_eq!(
        checked.json_lines(),
        vec![json!({"ok": true, "xstateMajor": 4, "exports": ["allowRead", "allowWrite"]})]
    );

    let args = [
        "machine", "run", bundle, "--event", "toggle", "--event", "toggle", "--event", "toggle",
    ];
    let ran = common::cli::statewire(&args, &cache, timeout);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let toggle = json!({"type": "toggle"});
    let line = |event: &Value, state: &str, count: u64| {
        json!({"event": event, "state": state, "publicContext": {"toggleCount": count},
               "tags": [], "done": false})
    };
    assert_eq!(
        ran.json_lines(),
        vec![
            line(&Value::Null, "on", 0),
            line(&toggle, "off", 1),
            line(&toggle, "on", 1),
            line(&toggle, "off", 2),
        ]
    );
}

/// Runs every bundle of one machine through every scenario, collecting all mismatches.
fn check_machine(name: &'static str) {
    with_timeout(async move {
        let suite = tokio::task::spawn_blocking(suite).await.expect("suite");
        let machine = suite.machine(name);
        let runtime = runtime();
        let mut failures = Vec::new();
        for bundle in &machine.bundles {
            let code = load_code(&suite.bundle_path(bundle));
            check_bundle_info(&runtime, &code, bundle, machine, &mut failures).await;
            for scenario in &machine.scenarios {
                let place = format!("{bundle} / {}", scenario.name);
                run_scenario(&runtime, &code, &place, scenario, &mut failures).await;
            }
        }
        assert!(
            failures.is_empty(),
            "{name}: {} mismatch(es) with xstate under Node:\n{}",
            failures.len(),
            failures.join("\n")
        );
    });
}

async fn check_bundle_info(
    runtime: &Runtime,
    code: &MachineCode,
    bundle: &str,
    machine: &ExpectedMachine,
    failures: &mut Vec<String>,
) {
    match runtime.check(code).await {
        Ok(info) => {
            if info.xstate_major != Some(machine.xstate_major) {
                failures.push(format!(
                    "{bundle}: xstate major {:?}, expected {}",
                    info.xstate_major, machine.xstate_major
                ));
            }
            let mut exports = info.exports.clone();
            exports.sort();
            if exports != machine.exports {
                failures.push(format!(
                    "{bundle}: exports {exports:?}, expected {:?}",
                    machine.exports
                ));
            }
        }
        Err(e) => failures.push(format!("{bundle}: check failed: {e}")),
    }
}

async fn run_scenario(
    runtime: &Runtime,
    code: &MachineCode,
    place: &str,
    scenario: &Scenario,
    failures: &mut Vec<String>,
) {
    let mut step = match runtime.init(code, &init_input(scenario)).await {
        Ok(step) => step,
        Err(e) => return failures.push(format!("{place}: init failed: {e}")),
    };
    compare_step(
        &format!("{place}, initial state"),
        &step,
        &scenario.steps[0],
        failures,
    );
    for (i, expected) in scenario.steps.iter().enumerate().skip(1) {
        let event = expected
            .event
            .as_ref()
            .expect("every step after the first has an event");
        step = match runtime.transition(code, &step.snapshot, event).await {
            Ok(next) => next,
            Err(e) => return failures.push(format!("{place}, event {i} {event}: failed: {e}")),
        };
        compare_step(
            &format!("{place}, event {i} {event}"),
            &step,
            expected,
            failures,
        );
    }
    for probe in &scenario.probes {
        let answer = match probe.op.as_str() {
            "allowRead" => runtime.allow_read(code, &probe.args).await,
            "allowWrite" => runtime.allow_write(code, &probe.args).await,
            other => panic!("unknown probe {other}"),
        };
        match answer {
            Ok(allowed) if allowed == probe.allowed => {}
            Ok(allowed) => failures.push(format!(
                "{place}: {}({}) = {allowed}, expected {}",
                probe.op, probe.args, probe.allowed
            )),
            Err(e) => failures.push(format!("{place}: {}({}) failed: {e}", probe.op, probe.args)),
        }
    }
}

fn compare_step(place: &str, actual: &Step, expected: &ExpectedStep, failures: &mut Vec<String>) {
    let mut field = |name: &str, actual: Value, expected: Value| {
        if actual != expected {
            failures.push(format!("{place}: {name} is {actual}, expected {expected}"));
        }
    };
    field("state", actual.state.clone(), expected.state.clone());
    field("context", actual.context.clone(), expected.context.clone());
    // Tags are a set in XState; their iteration order depends on whether the state was
    // reached live or restored from a snapshot, so only membership is compared.
    field(
        "tags",
        json!(sorted(&actual.tags)),
        json!(sorted(&expected.tags)),
    );
    field("done", json!(actual.done), json!(expected.done));
    if let Some(difference) = common::effects::compare(&actual.effects, &expected.effects) {
        failures.push(format!("{place}: effects differ: {difference}"));
    }
}

fn sorted(tags: &[String]) -> Vec<&str> {
    let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags
}

fn init_input(scenario: &Scenario) -> InitInput {
    InitInput {
        machine_instance_name: scenario.instance.clone(),
        context: scenario.context.clone(),
        auth_context: scenario.auth_context.clone(),
    }
}

fn load_code(path: &Path) -> MachineCode {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    MachineCode::new(bytes, RuntimeConfig::default().max_bundle_bytes).expect("bundle size")
}

/// Compiled modules are cached next to the built bundles, so later runs start faster.
fn cache_dir() -> PathBuf {
    common::machines::repo_root()
        .join("target")
        .join("machines")
        .join("module-cache")
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(),
        workers: 1,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

fn with_timeout(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, test)
                .await
                .unwrap_or_else(|_| panic!("test did not finish within {TEST_TIMEOUT:?}"));
        });
}
