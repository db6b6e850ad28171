// A traffic light driven by `after` timers (a literal delay and a named delay read from
// context), plus an explicit delayed send that a later event cancels. The host delivers the
// timer events itself, so the scenario sends them as ordinary events. It leaves
// `predictableActionArguments` off.
import { actions, assign, createMachine } from "xstate";

const { send, cancel } = actions;

export const allowRead = () => true;

export const allowWrite = () => true;

export default createMachine(
  {
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
          RED_DELAY: {
            target: "green",
            actions: assign({
              public: (context) => ({ cycles: context.public.cycles + 1 }),
            }),
          },
        },
      },
      flashing: {
        entry: send({ type: "selfTest" }, { delay: 60000, id: "self-test" }),
        on: {
          reset: {
            target: "green",
            actions: cancel("self-test"),
          },
          selfTest: "green",
        },
      },
    },
  },
  {
    delays: {
      RED_DELAY: (context) => context.redMs,
    },
  },
);
