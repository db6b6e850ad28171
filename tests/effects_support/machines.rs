//! Machines for the effect tests, as smply uploads them (ES modules importing `npm:xstate`).
//! Every authorizer allows everything unless the machine says otherwise.

/// `a` moves to `b` 300 ms after it is entered; `LEAVE` goes to `c`; `SELF` re-enters `a`.
pub const TIMED: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "m",
  predictableActionArguments: true,
  initial: "a",
  states: {
    a: { after: { 300: "b" }, on: { LEAVE: "c", SELF: "a" } },
    b: {},
    c: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// The id of [`TIMED`]'s timer, which is also its event type.
pub const TIMED_AFTER: &str = "xstate.after(300)#m.a";

/// Explicit delayed sends: `ARM` schedules `PING` in 200 ms with id `ping`, `DISARM` cancels
/// it, `AWAY` leaves for `d`, which also takes `PING`.
pub const PING: &str = r#"
import { actions, createMachine, send } from "npm:xstate";

export default createMachine({
  id: "ping",
  predictableActionArguments: true,
  initial: "c",
  states: {
    c: {
      on: {
        ARM: { actions: send("PING", { delay: 200, id: "ping" }) },
        DISARM: { actions: actions.cancel("ping") },
        PING: "pinged",
        AWAY: "d",
      },
    },
    d: { on: { PING: "pinged" } },
    pinged: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// Two timers with one id: `ARM` schedules `T` in 100 ms with id `t`, `CANCEL` cancels `t`,
/// each `T` counts in `context.n`.
pub const DUP: &str = r#"
import { actions, assign, createMachine, send } from "npm:xstate";

export default createMachine({
  id: "dup",
  predictableActionArguments: true,
  initial: "on",
  context: { n: 0 },
  states: {
    on: {
      on: {
        ARM: { actions: send("T", { delay: 100, id: "t" }) },
        CANCEL: { actions: actions.cancel("t") },
        T: { actions: assign({ n: (c) => c.n + 1 }) },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// An `after` whose guard always throws.
pub const THROWS: &str = r#"
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "m",
  predictableActionArguments: true,
  initial: "a",
  states: {
    a: {
      after: {
        100: {
          target: "b",
          cond: () => {
            throw new Error("the guard fails");
          },
        },
      },
    },
    b: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// `GO` moves to `first` and sends `NEXT` to itself without a delay; `NEXT` moves on.
pub const ENQUEUE: &str = r#"
import { createMachine, send } from "npm:xstate";

export default createMachine({
  id: "q",
  predictableActionArguments: true,
  initial: "idle",
  states: {
    idle: { on: { GO: { target: "first", actions: send("NEXT") } } },
    first: { on: { NEXT: "second" } },
    second: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// Entering `a` runs the named action `count` (an `exec` effect) and counts entries in
/// context; `TOGGLE` flips between `a` and `b`.
pub const COUNTED: &str = r#"
import { assign, createMachine } from "npm:xstate";

export default createMachine(
  {
    id: "counted",
    predictableActionArguments: true,
    initial: "b",
    context: { entries: 0 },
    states: {
      a: {
        entry: ["count", assign({ entries: (c) => c.entries + 1 })],
        on: { TOGGLE: "b" },
      },
      b: { on: { TOGGLE: "a" } },
    },
  },
  { actions: { count: () => {} } },
);

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// XState 5: `after` 300 ms from `a` to `b`; `LEAVE` to `c`; in `c`, `ARM` raises `PING` in
/// 200 ms with id `ping`, `DISARM` cancels it.
pub const TIMED_V5: &str = r#"
import { cancel, raise, setup } from "xstate5";

export default setup({}).createMachine({
  id: "m",
  initial: "a",
  states: {
    a: { after: { 300: "b" }, on: { LEAVE: "c" } },
    b: {},
    c: {
      on: {
        ARM: { actions: raise({ type: "PING" }, { delay: 200, id: "ping" }) },
        DISARM: { actions: cancel("ping") },
        PING: "pinged",
      },
    },
    pinged: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// A parent that spawns the persistent child `kid-1` (machine `kid`) on `SPAWN`, sends it
/// `GREET` on `POKE`, and waits for its `HELLO`. Its `allowWrite` takes events from the admin,
/// and `HELLO` only from that child, recognised by `authContext.stateBackedSender`.
pub const PARENT: &str = r#"
import { assign, createMachine, send } from "npm:xstate";

export default createMachine({
  id: "parent",
  predictableActionArguments: true,
  initial: "idle",
  context: {},
  states: {
    idle: {
      on: {
        SPAWN: {
          target: "waiting",
          actions: assign({
            kid: () =>
              globalThis.__statebacked_rt.spawn(
                { machineName: "kid", machineInstanceName: "kid-1" },
                { name: "kid", context: { greeting: "hi" } },
              ),
          }),
        },
      },
    },
    waiting: {
      on: {
        POKE: { actions: send({ type: "GREET" }, { to: (c) => c.kid }) },
        HELLO: { target: "greeted", actions: assign({ from: (_, e) => e.from }) },
      },
    },
    greeted: {},
  },
});

export const allowRead = () => true;

export const allowWrite = ({ event, authContext }) => {
  const sender = authContext.stateBackedSender;
  if (event && event.type === "HELLO") {
    return !!sender && sender.machineName === "kid" && sender.machineInstanceName === "kid-1";
  }
  return authContext.sub === "admin";
};
"#;

/// The persistent child: `GREET` sends `HELLO` with its greeting to its parent.
pub const KID: &str = r#"
import { createMachine, sendParent } from "npm:xstate";

export default createMachine({
  id: "kid",
  predictableActionArguments: true,
  initial: "born",
  context: { greeting: "" },
  states: {
    born: {
      on: {
        GREET: {
          target: "greeted",
          actions: sendParent((c) => ({ type: "HELLO", from: c.greeting })),
        },
      },
    },
    greeted: {},
  },
});

export const allowRead = () => true;

export const allowWrite = ({ authContext }) => {
  const sender = authContext.stateBackedSender;
  return authContext.sub === "admin" || (!!sender && sender.machineName === "parent");
};
"#;

/// [`KID`] written for XState 5: its `sendParent` goes to the stand-in parent the module
/// gives every actor, which the host maps to the parent instance.
pub const KID_V5: &str = r#"
import { sendParent, setup } from "xstate5";

export default setup({}).createMachine({
  id: "kid",
  initial: "born",
  context: { greeting: "" },
  states: {
    born: {
      on: {
        GREET: {
          target: "greeted",
          actions: sendParent(({ context }) => ({ type: "HELLO", from: context.greeting })),
        },
      },
    },
    greeted: {},
  },
});

export const allowRead = () => true;

export const allowWrite = ({ authContext }) => {
  const sender = authContext.stateBackedSender;
  return authContext.sub === "admin" || (!!sender && sender.machineName === "parent");
};
"#;
