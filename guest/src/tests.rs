//! The engine run natively (not as wasm): loading through the module loader, job draining,
//! recovery after an exhausted heap, and the Rust-side answers. The glue's behaviour is tested
//! in detail under Node (guest/js/test); these tests cover what only exists on this side.

use crate::{answer, engine};

const OP_CONFIGURE: i32 = 0;
const OP_LOAD: i32 = 1;
const OP_INIT: i32 = 2;
const OP_TRANSITION: i32 = 3;
const OP_ALLOW_READ: i32 = 4;
const OP_RUN_EFFECTS: i32 = 6;
const OP_COMPLETE_OP: i32 = 7;
const OP_STOP_CHILD: i32 = 8;
const OP_DISCARD: i32 = 9;
const OP_RUNNING: i32 = 10;

const TOGGLE: &str = r#"
import { createMachine, assign } from "npm:xstate";
import { createMachine as createMachine5 } from "xstate5";
export default createMachine({
  predictableActionArguments: true,
  initial: "off",
  context: { count: 0 },
  states: {
    off: { on: { TOGGLE: { target: "on", actions: assign({ count: (c) => c.count + 1 }) } } },
    on: { tags: ["lit"], on: { TOGGLE: "off" } },
  },
});
export const spare = typeof createMachine5;
export function allowRead({ authContext }) {
  if (authContext.sub === "bomb") {
    // A doubly linked chain: garbage that only the cycle collector frees.
    let last = { values: [] };
    for (;;) { const next = { prev: last, values: new Array(10000).fill(1.5) }; last.next = next; last = next; }
  }
  if (authContext.sub === "deep") { const f = (n) => f(n + 1) + 1; return f(0); }
  return authContext.sub === "reader";
}
export const allowWrite = async () => true;
"#;

fn call(op: i32, input: &str) -> String {
    engine::call(op, input.as_bytes())
}

/// Configures and loads [`TOGGLE`]. Natively, and unoptimized in test builds, QuickJS's frames
/// are far larger than in the wasm guest, so the stack limit is raised to its maximum.
fn loaded() {
    let settings = r#"{"heapLimitBytes":16777216,"stackLimitBytes":196608}"#;
    assert_eq!(call(OP_CONFIGURE, settings), r#"{"ok":{}}"#);
    assert_eq!(
        call(OP_LOAD, TOGGLE),
        r#"{"ok":{"abi":2,"xstateMajor":4,"exports":["allowRead","allowWrite","spare"]}}"#
    );
}

#[test]
fn a_bundle_loads_through_both_xstate_specifiers_and_steps() {
    loaded();
    let init = call(
        OP_INIT,
        r#"{"machineInstanceName":"i","context":{"count":5},"authContext":{}}"#,
    );
    assert!(init.contains(r#""state":"off""#), "{init}");
    assert!(init.contains(r#""context":{"count":5}"#), "{init}");
    let snapshot_at = init.find(r#""snapshot":"#).expect("a snapshot") + r#""snapshot":"#.len();
    let snapshot = json_value_at(&init, snapshot_at);
    let next = call(
        OP_TRANSITION,
        &format!(r#"{{"snapshot":{snapshot},"event":{{"type":"TOGGLE"}}}}"#),
    );
    assert!(next.contains(r#""state":"on""#), "{next}");
    assert!(next.contains(r#""tags":["lit"]"#), "{next}");
    assert!(next.contains(r#""context":{"count":6}"#), "{next}");
}

#[test]
fn an_async_authorizer_settles_before_the_answer() {
    loaded();
    assert_eq!(
        call(5, r#"{"type":"event","authContext":{}}"#),
        r#"{"ok":{"allowed":true}}"#
    );
}

#[test]
fn an_exhausted_heap_is_reported_and_the_next_call_works() {
    loaded();
    let bomb = call(OP_ALLOW_READ, r#"{"authContext":{"sub":"bomb"}}"#);
    assert!(answer::is_out_of_memory(&bomb), "{bomb}");
    for _ in 0..3 {
        assert_eq!(
            call(OP_ALLOW_READ, r#"{"authContext":{"sub":"reader"}}"#),
            r#"{"ok":{"allowed":true}}"#
        );
        let again = call(OP_ALLOW_READ, r#"{"authContext":{"sub":"bomb"}}"#);
        assert!(answer::is_out_of_memory(&again), "{again}");
    }
}

#[test]
fn runaway_recursion_is_a_range_error() {
    loaded();
    let deep = call(OP_ALLOW_READ, r#"{"authContext":{"sub":"deep"}}"#);
    assert!(
        deep.starts_with(r#"{"error":{"kind":"machine-threw""#),
        "{deep}"
    );
    assert!(deep.contains("RangeError"), "{deep}");
}

#[test]
fn an_import_outside_the_two_libraries_is_an_invalid_bundle() {
    let answer = call(OP_LOAD, r#"import x from "npm:lodash"; export default x;"#);
    assert!(
        answer.starts_with(r#"{"error":{"kind":"invalid-bundle""#),
        "{answer}"
    );
    assert!(answer.contains("npm:lodash"), "{answer}");
}

#[test]
fn input_that_is_not_utf8_is_refused_before_the_glue() {
    let bad = [0xff, 0xfe];
    assert_eq!(
        engine::call(OP_INIT, &bad),
        r#"{"error":{"kind":"bad-input","message":"input is not UTF-8"}}"#
    );
    assert!(engine::call(OP_LOAD, &bad).contains("invalid-bundle"));
}

#[test]
fn an_unknown_operation_is_unsupported() {
    assert!(call(77, "{}").starts_with(r#"{"error":{"kind":"unsupported-op""#));
}

#[test]
fn rust_side_errors_are_escaped_json() {
    let text = answer::error(
        answer::Kind::Internal,
        "quote \" backslash \\ newline \n bell \u{7}",
    );
    assert_eq!(
        text,
        r#"{"error":{"kind":"internal","message":"quote \" backslash \\ newline \n bell \u0007"}}"#
    );
    assert!(answer::is_out_of_memory(&answer::error(
        answer::Kind::OutOfMemory,
        "x"
    )));
    assert!(!answer::is_out_of_memory(
        r#"{"ok":{"kind":"out-of-memory"}}"#
    ));
}

/// The JSON value (object or array) starting at `start`, found by bracket depth; strings in
/// these tests hold no brackets.
fn json_value_at(text: &str, start: usize) -> &str {
    let mut depth = 0;
    for (offset, c) in text[start..].char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..=start + offset];
                }
            }
            _ => {}
        }
    }
    &text[start..]
}

/// The object or array after the first `"key":` in `text`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    let label = format!("\"{key}\":");
    let at = text
        .find(&label)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + label.len();
    json_value_at(text, at)
}

/// The number after the first `"key":` in `text`.
fn number(text: &str, key: &str) -> u64 {
    let label = format!("\"{key}\":");
    let at = text
        .find(&label)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + label.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {text}"))
}

const LOADER: &str = r#"
import { assign, createMachine, spawn } from "npm:xstate";
export default createMachine({
  predictableActionArguments: true,
  initial: "idle",
  context: { user: null, ref: null },
  states: {
    idle: {
      on: {
        LOAD: "loading",
        SPAWN: { actions: assign({ ref: () => spawn(fetch("https://api.example.test/spawned"), "p1") }) },
      },
    },
    loading: {
      entry: "note",
      invoke: {
        id: "fetchUser",
        src: async () => {
          await new Promise((resolve) => setTimeout(resolve, 25));
          const response = await fetch("https://api.example.test/users/1", { headers: { accept: "application/json" } });
          return response.json();
        },
        onDone: { target: "loaded", actions: assign({ user: (_, event) => event.data }) },
      },
      on: { CANCEL: "idle" },
    },
    loaded: {},
  },
}, { actions: { note: () => console.log("loading") } });
export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// Loads [`LOADER`] and returns the snapshot of its initial state.
fn loaded_loader() -> String {
    let settings = r#"{"heapLimitBytes":33554432,"stackLimitBytes":196608}"#;
    assert_eq!(call(OP_CONFIGURE, settings), r#"{"ok":{}}"#);
    let load = call(OP_LOAD, LOADER);
    assert!(
        load.starts_with(r#"{"ok":{"abi":2,"xstateMajor":4"#),
        "{load}"
    );
    let init = call(
        OP_INIT,
        r#"{"machineInstanceName":"i","context":{},"authContext":{}}"#,
    );
    assert!(init.contains(r#""token":null"#), "{init}");
    field(&init, "snapshot").to_owned()
}

fn with_token(op: i32, step: &str) -> String {
    call(op, &format!(r#"{{"token":{}}}"#, number(step, "token")))
}

#[test]
fn a_service_runs_through_sleep_and_fetch_operations_to_its_done_event() {
    let snapshot = loaded_loader();
    let step = call(
        OP_TRANSITION,
        &format!(r#"{{"snapshot":{snapshot},"event":{{"type":"LOAD"}}}}"#),
    );
    let effects = r#""effects":[{"type":"start","id":"fetchUser","src":"fetchUser"},{"type":"exec","action":"note"}]"#;
    assert!(step.contains(effects), "{step}");
    assert!(
        !step.contains("\"logs\""),
        "nothing ran in the pure step: {step}"
    );
    let snapshot = field(&step, "snapshot").to_owned();

    let started = with_token(OP_RUN_EFFECTS, &step);
    assert!(
        started.contains(r#""ops":[{"opId":1,"kind":"sleep","ms":25}]"#),
        "{started}"
    );
    assert!(started.contains(r#""running":["fetchUser"]"#), "{started}");
    assert!(
        started.contains(r#""logs":[{"level":"log","message":"loading"}]"#),
        "{started}"
    );

    let slept = call(OP_COMPLETE_OP, r#"{"opId":1,"result":{}}"#);
    let request = r#""kind":"fetch","request":{"method":"GET","url":"https://api.example.test/users/1","headers":{"accept":"application/json"},"body":null}"#;
    assert!(slept.contains(request), "{slept}");
    let fetch_id = number(field(&slept, "ops"), "opId");

    let answer = r#"{"ok":true,"status":200,"headers":{"content-type":"application/json"},"body":"{\"name\":\"Ada\"}"}"#;
    let fetched = call(
        OP_COMPLETE_OP,
        &format!(r#"{{"opId":{fetch_id},"result":{answer}}}"#),
    );
    let events = field(&fetched, "events");
    assert_eq!(
        events,
        r#"[{"type":"done.invoke.fetchUser","data":{"name":"Ada"}}]"#
    );
    assert!(fetched.contains(r#""running":[]"#), "{fetched}");

    let event = &events[1..events.len() - 1];
    let done = call(
        OP_TRANSITION,
        &format!(r#"{{"snapshot":{snapshot},"event":{event}}}"#),
    );
    assert!(done.contains(r#""state":"loaded""#), "{done}");
    assert!(done.contains(r#""user":{"name":"Ada"}"#), "{done}");
}

#[test]
fn a_fetch_made_in_the_pure_step_waits_for_run_effects_and_dies_with_discard() {
    let snapshot = loaded_loader();
    let spawn = format!(r#"{{"snapshot":{snapshot},"event":{{"type":"SPAWN"}}}}"#);
    let first = call(OP_TRANSITION, &spawn);
    assert_eq!(
        with_token(OP_DISCARD, &first),
        r#"{"ok":{"ops":[],"abort":[],"events":[],"sends":[],"running":[]}}"#
    );
    let refused = with_token(OP_RUN_EFFECTS, &first);
    assert!(
        refused.starts_with(r#"{"error":{"kind":"bad-input""#),
        "{refused}"
    );

    let second = call(OP_TRANSITION, &spawn);
    let released = with_token(OP_RUN_EFFECTS, &second);
    assert_eq!(
        released.matches(r#""kind":"fetch""#).count(),
        1,
        "{released}"
    );
    assert!(
        released.contains("https://api.example.test/spawned"),
        "{released}"
    );
    assert!(released.contains(r#""running":["p1"]"#), "{released}");
    let stopped = call(OP_STOP_CHILD, r#"{"id":"p1"}"#);
    assert!(stopped.contains(r#""running":[]"#), "{stopped}");
    assert_eq!(
        call(OP_RUNNING, "{}"),
        r#"{"ok":{"ops":[],"abort":[],"events":[],"sends":[],"running":[]}}"#
    );
}

#[test]
fn leaving_the_state_stops_the_service_and_aborts_its_operation() {
    let snapshot = loaded_loader();
    let step = call(
        OP_TRANSITION,
        &format!(r#"{{"snapshot":{snapshot},"event":{{"type":"LOAD"}}}}"#),
    );
    with_token(OP_RUN_EFFECTS, &step);
    let snapshot = field(&step, "snapshot");
    let cancel = call(
        OP_TRANSITION,
        &format!(r#"{{"snapshot":{snapshot},"event":{{"type":"CANCEL"}}}}"#),
    );
    assert!(
        cancel.contains(r#""effects":[{"type":"stop","id":"fetchUser"}]"#),
        "{cancel}"
    );
    assert_eq!(
        with_token(OP_RUN_EFFECTS, &cancel),
        r#"{"ok":{"ops":[],"abort":[1],"events":[],"sends":[],"running":[]}}"#
    );
    let late = call(OP_COMPLETE_OP, r#"{"opId":1,"result":{}}"#);
    assert!(
        late.contains(r#""ops":[],"abort":[],"events":[]"#),
        "{late}"
    );
}

#[test]
fn effect_operations_check_their_input() {
    loaded_loader();
    for (op, input) in [
        (OP_RUN_EFFECTS, r#"{"token":0}"#),
        (OP_RUN_EFFECTS, r#"{"token":"1"}"#),
        (OP_COMPLETE_OP, r#"{"opId":1}"#),
        (OP_COMPLETE_OP, r#"{"opId":-2,"result":{}}"#),
        (OP_STOP_CHILD, r#"{"id":5}"#),
        (OP_DISCARD, "[]"),
    ] {
        let answer = call(op, input);
        assert!(
            answer.starts_with(r#"{"error":{"kind":"bad-input""#),
            "{op} {input}: {answer}"
        );
        assert!(answer.contains(r#""outbox":{"ops":[]"#), "{answer}");
    }
}

/// Every web global the guest provides, used once from machine code in QuickJS.
const WEB_CHECKS: &str = r#"
import { createMachine } from "npm:xstate";
export default createMachine({ initial: "a", states: { a: {} } });
export const allowWrite = () => true;
export async function allowRead() {
  const failures = [];
  const check = (name, ok) => { if (!ok) failures.push(name); };
  const bytes = new TextEncoder().encode("h\u00e9\u{1d11e}");
  check("encode", bytes.length === 7 && bytes[1] === 0xc3);
  check("decode", new TextDecoder().decode(bytes) === "h\u00e9\u{1d11e}");
  check("decode replacement", new TextDecoder().decode(new Uint8Array([0x61, 0xff])) === "a\ufffd");
  const url = new URL("../b?x=1#f", "https://User@Example.TEST:443/a/c");
  check("url", url.href === "https://User@example.test/b?x=1#f" && url.origin === "https://example.test");
  url.searchParams.append("y", "a b");
  check("search params", url.search === "?x=1&y=a+b" && new URLSearchParams("a=1&a=2").getAll("a").length === 2);
  const uuids = new Set([crypto.randomUUID(), crypto.randomUUID()]);
  check("uuid", uuids.size === 2 && [...uuids].every((u) => /^[0-9a-f-]{36}$/.test(u) && u[14] === "4"));
  check("random values", crypto.getRandomValues(new Uint8Array(32)).some((b) => b !== 0));
  const original = { a: [1, { b: new Date(5) }], m: new Map([[1, 2]]) };
  const copy = structuredClone(original);
  check("clone", copy !== original && copy.a[1].b.getTime() === 5 && copy.m.get(1) === 2);
  const controller = new AbortController();
  controller.abort();
  check("abort", controller.signal.aborted && controller.signal.reason.name === "AbortError");
  const headers = new Headers({ "Content-Type": "text/plain", b: "1" });
  headers.append("B", "2");
  check("headers", headers.get("b") === "1, 2" && [...headers.keys()].join() === "b,content-type");
  const response = new Response("{\"n\":1}", { status: 202 });
  check("response", response.ok && (await response.json()).n === 1);
  check("base64", atob(btoa("xyz")) === "xyz");
  check("engine globals", typeof performance.now() === "number" && typeof queueMicrotask === "function" && new DOMException("m", "AbortError").name === "AbortError");
  const draws = [Math.random(), Math.random()];
  check("math random", draws[0] !== draws[1] && draws.every((x) => x >= 0 && x < 1) && !String(Math.random).includes("native code"));
  check("timers inert", typeof setTimeout(() => failures.push("timer fired"), 0) === "number");
  check("rt", typeof globalThis.__statebacked_rt.spawn === "function" && globalThis.__statebaked_rt === globalThis.__statebacked_rt);
  try {
    await fetch("https://api.example.test/");
    failures.push("fetch while authorizing");
  } catch (e) {
    check("fetch refused", e instanceof TypeError);
  }
  if (failures.length > 0) console.log(failures.join(","));
  return failures.length === 0;
}
"#;

#[test]
fn web_globals_work_in_the_engine() {
    call(OP_CONFIGURE, r#"{"stackLimitBytes":196608}"#);
    let load = call(OP_LOAD, WEB_CHECKS);
    assert!(load.starts_with(r#"{"ok":"#), "{load}");
    assert_eq!(call(OP_ALLOW_READ, "{}"), r#"{"ok":{"allowed":true}}"#);
}
