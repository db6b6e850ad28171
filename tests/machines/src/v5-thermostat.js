// XState v5 guards that read the event: parameterized guards, `and`/`not` combinators, a
// `stateIn` guard on a parallel sibling, and `enqueueActions` choosing actions by event data.
import { and, assign, enqueueActions, not, setup, stateIn } from "xstate5";

export const allowRead = () => true;

export const allowWrite = ({ event, authContext }) =>
  event.type !== "setLimits" || authContext.role === "installer";

export default setup({
  guards: {
    isNumber: ({ event }) => typeof event.value === "number",
    inRange: ({ context, event }) => event.value >= context.min && event.value <= context.max,
    targetBelow: ({ context }, params) => context.public.target < params.limit,
  },
  actions: {
    setTarget: assign({
      public: ({ context }, params) => ({ ...context.public, target: params.target }),
    }),
    reject: assign({
      public: ({ context, event }) => ({ ...context.public, lastRejected: event.value ?? null }),
    }),
  },
}).createMachine({
  id: "thermostat",
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
                guard: and(["isNumber", "inRange"]),
                actions: {
                  type: "setTarget",
                  params: ({ event }) => ({ target: event.value }),
                },
              },
              { actions: "reject" },
            ],
            nudge: {
              actions: enqueueActions(({ context, event, enqueue }) => {
                if (event.direction === "up") {
                  enqueue({ type: "setTarget", params: { target: context.public.target + 1 } });
                } else if (event.direction === "down") {
                  enqueue({ type: "setTarget", params: { target: context.public.target - 1 } });
                }
              }),
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
              guard: and([
                { type: "targetBelow", params: { limit: 25 } },
                stateIn("#thermostat.power.on"),
              ]),
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
      guard: not(({ event }) => event.min >= event.max),
      actions: assign(({ event }) => ({ min: event.min, max: event.max })),
    },
  },
});
