// XState v5 effects that concern the machine itself: `after` timers (a literal delay, a named
// delay read from context, a guarded list under one delay), leaving and re-entering a timed
// state, a delayed send to self with an id and its cancel, a delayed raise without an id (XState
// gives it a random id), a raise without delay (nothing), a send to self without delay
// (enqueued), `log` with and without a label, `emit` (nothing), named and inline custom
// actions, and `sendParent` (to the runtime's stand-in parent).
import { assign, cancel, emit, log, raise, sendParent, sendTo, setup } from "xstate5";

export const allowRead = () => true;

export const allowWrite = () => true;

function remindLater({ context }) {
  return context.public.pings;
}

export default setup({
  delays: {
    patience: ({ context }) => context.patienceMs,
  },
  actions: {
    notify: () => {},
  },
}).createMachine({
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
          actions: sendTo(({ self }) => self, { type: "nudge" }, { delay: 3000, id: "nudge-1" }),
        },
        disarm: { actions: cancel("nudge-1") },
        tick: {
          // No id: XState 5 schedules it under a random id.
          actions: raise({ type: "tick" }, { delay: 250 }),
        },
        later: { actions: raise({ type: "reminded" }, { delay: 400, id: "remind" }) },
        bump: {
          actions: [
            assign({ public: ({ context }) => ({ pings: context.public.pings + 1 }) }),
            raise({ type: "bumped" }),
          ],
        },
        bumped: { actions: log(({ context }) => context.public, "pings") },
        again: { actions: sendTo(({ self }) => self, { type: "bump" }) },
        hello: {
          actions: sendParent(({ context }) => ({ type: "hello", pings: context.public.pings })),
        },
        shout: { actions: emit({ type: "shouted" }) },
        custom: {
          actions: [
            "notify",
            // An inline function is named by its function name.
            remindLater,
            { type: "notify", params: { level: 2 } },
          ],
        },
        anonymous: {
          actions: [
            // No name at all: the action is named by its source text, cut at 200 characters.
            ({ context, event }) => {
              const summary = { pings: context.public.pings, event: event.type, when: "now" };
              const padding = "this inline action has no name, so its source text names it";
              return JSON.stringify({ summary, padding, more: padding.toUpperCase() });
            },
          ],
        },
      },
    },
    timed: {
      after: {
        2000: "idle",
        patience: { target: "idle", actions: log("patience ran out") },
      },
      on: {
        poke: {},
        again: { target: "timed", reenter: true },
        leave: "idle",
      },
    },
    guarded: {
      after: {
        500: [
          { target: "idle", guard: ({ context }) => context.public.pings > 0 },
          { target: "timed" },
        ],
      },
      on: { leave: "idle" },
    },
  },
});
