// A thermostat whose guards read the event: range checks against context, a guard object with
// parameters, an `in` guard on a parallel sibling, and `choose` picking an action by event data.
import { actions, assign, createMachine } from "xstate";

const { choose } = actions;

export const allowRead = () => true;

export const allowWrite = ({ event, authContext }) =>
  event.type !== "setLimits" || authContext.role === "installer";

export default createMachine(
  {
    id: "thermostat",
    predictableActionArguments: true,
    type: "parallel",
    context: {
      public: { target: 20, lastRejected: null },
      min: 10,
      max: 30,
    },
    states: {
      power: {
        initial: "off",
        states: {
          off: { on: { powerOn: "on" } },
          on: {
            tags: ["powered"],
            on: {
              powerOff: "off",
              set: [
                {
                  cond: (context, event) =>
                    typeof event.value !== "number" ||
                    event.value < context.min ||
                    event.value > context.max,
                  actions: "rejectValue",
                },
                { actions: "acceptValue" },
              ],
              nudge: {
                actions: choose([
                  {
                    cond: (_context, event) => event.direction === "up",
                    actions: "nudgeUp",
                  },
                  {
                    cond: (_context, event) => event.direction === "down",
                    actions: "nudgeDown",
                  },
                ]),
              },
            },
          },
        },
      },
      mode: {
        initial: "auto",
        states: {
          auto: {
            on: {
              boost: {
                target: "boosting",
                cond: { type: "targetBelow", limit: 25 },
                in: "#thermostat.power.on",
              },
            },
          },
          boosting: {
            tags: ["boost"],
            on: { settle: "auto" },
          },
        },
      },
    },
    on: {
      setLimits: {
        cond: (_context, event) => event.min < event.max,
        actions: assign((_context, event) => ({ min: event.min, max: event.max })),
      },
    },
  },
  {
    guards: {
      targetBelow: (context, _event, { cond }) => context.public.target < cond.limit,
    },
    actions: {
      rejectValue: assign({
        public: (context, event) => ({
          ...context.public,
          lastRejected: event.value ?? null,
        }),
      }),
      acceptValue: assign({
        public: (context, event) => ({
          ...context.public,
          target: event.value,
        }),
      }),
      nudgeUp: assign({
        public: (context) => ({ ...context.public, target: context.public.target + 1 }),
      }),
      nudgeDown: assign({
        public: (context) => ({ ...context.public, target: context.public.target - 1 }),
      }),
    },
  },
);
