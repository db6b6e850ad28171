// Every effect a step can leave to the host that concerns the machine itself: `after` timers
// (a literal delay, a named delay read from context, a guarded array), leaving and re-entering
// a timed state, explicit delayed sends with and without an id and their cancel, a delayed
// raise, a raise without delay (nothing), a send to self without delay (enqueued), `log` with
// and without a label, named and inline custom actions, and `sendParent`. It leaves
// `predictableActionArguments` off, so XState 4's legacy action order is covered too.
import { actions, assign, createMachine, send, sendParent } from "xstate";

const { cancel, log, raise } = actions;

export const allowRead = () => true;

export const allowWrite = () => true;

function remindLater(context) {
  return context.public.pings;
}

export default createMachine(
  {
    id: "effects",
    initial: "idle",
    context: { public: { pings: 0 }, patienceMs: 1500 },
    states: {
      idle: {
        entry: log("ready", "boot"),
        on: {
          wait: "timed",
          guard: "guarded",
          arm: {
            actions: send({ type: "nudge" }, { delay: 3000, id: "nudge-1" }),
          },
          disarm: { actions: cancel("nudge-1") },
          tick: {
            // No id: XState 4 names the timer after the event type.
            actions: send({ type: "tick" }, { delay: 250 }),
          },
          later: {
            actions: raise({ type: "reminded" }, { delay: 400, id: "remind" }),
          },
          bump: {
            actions: [
              assign({ public: (context) => ({ pings: context.public.pings + 1 }) }),
              raise({ type: "bumped" }),
            ],
          },
          bumped: { actions: log((context) => context.public, "pings") },
          again: { actions: send({ type: "bump" }) },
          hello: {
            actions: sendParent((context) => ({ type: "hello", pings: context.public.pings })),
          },
          custom: {
            actions: [
              "notify",
              // An inline function is named by its function name.
              remindLater,
              // An action object without an implementation keeps its type.
              { type: "unimplemented", level: 2 },
            ],
          },
          anonymous: {
            actions: [
              // No name at all: the action is named by its source text, cut at 200 characters.
              (context, event) => {
                const summary = { pings: context.public.pings, event: event.type, when: "now" };
                const padding = "this inline action has no name, so its source text names it";
                const tail = "and the name is cut after two hundred characters of that text";
                return JSON.stringify({ summary, padding, more: padding.toUpperCase(), tail });
              },
            ],
          },
        },
      },
      timed: {
        after: {
          2000: "idle",
          PATIENCE: { target: "idle", actions: log("patience ran out") },
        },
        on: {
          poke: {},
          again: { target: "timed" },
          leave: "idle",
        },
      },
      guarded: {
        after: [
          { delay: 500, target: "idle", cond: (context) => context.public.pings > 0 },
          { delay: 800, target: "timed" },
        ],
        on: { leave: "idle" },
      },
    },
  },
  {
    delays: {
      PATIENCE: (context) => context.patienceMs,
    },
    actions: {
      notify: () => {},
    },
  },
);
