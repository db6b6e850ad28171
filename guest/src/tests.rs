//! The engine run natively (not as wasm): loading through the module loader, job draining,
//! recovery after an exhausted heap, and the Rust-side answers. The glue's behaviour is tested
//! in detail under Node (guest/js/test); these tests cover what only exists on this side.

use crate::{answer, engine};

const OP_CONFIGURE: i32 = 0;
const OP_LOAD: i32 = 1;
const OP_INIT: i32 = 2;
const OP_TRANSITION: i32 = 3;
const OP_ALLOW_READ: i32 = 4;

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
        r#"{"ok":{"abi":1,"xstateMajor":4,"exports":["allowRead","allowWrite","spare"]}}"#
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

/// The JSON value (object) starting at `start`, found by bracket depth; strings in these tests
/// hold no braces.
fn json_value_at(text: &str, start: usize) -> &str {
    let mut depth = 0;
    for (offset, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
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
