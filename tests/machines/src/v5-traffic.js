// XState v5 timers: `after` with a literal and a named delay read from context, and a delayed
// raise with an id that a later transition cancels. The host delivers timer events itself,
// so the scenario sends them as ordinary events.
import { assign, cancel, raise, setup } from "xstate5";

export const allowRead = () => true;

export const allowWrite = () => true;

export default setup({
  delays: {
    redDelay: ({ context }) => context.redMs,
  },
}).createMachine({
  id: "traffic",
  initial: "green",
  context: { public: { cycles: 0 }, redMs: 20000 },
  states: {
    green: {
      tags: ["go"],
      after: { 30000: "yellow" },
      on: {
        emergency: "flashing",
        ping: {},
      },
    },
    yellow: {
      after: { 5000: "red" },
    },
    red: {
      tags: ["stop"],
      after: {
        redDelay: {
          target: "green",
          actions: assign({
            public: ({ context }) => ({ cycles: context.public.cycles + 1 }),
          }),
        },
      },
    },
    flashing: {
      entry: raise({ type: "selfTest" }, { delay: 60000, id: "self-test" }),
      on: {
        reset: { target: "green", actions: cancel("self-test") },
        selfTest: "green",
      },
    },
  },
});
