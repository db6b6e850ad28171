// A shopping checkout: a string-valued top-level state (`browsing`) next to a compound one
// (`paying`), targetless transitions that only assign, guards on context, tags on nested
// states, and a top-level final state.
import { assign, createMachine } from "xstate";

export const allowRead = ({ machineInstanceName, authContext }) =>
  authContext.sub === machineInstanceName;

export const allowWrite = ({ machineInstanceName, authContext }) =>
  authContext.sub === machineInstanceName;

export default createMachine(
  {
    id: "checkout",
    predictableActionArguments: true,
    initial: "browsing",
    context: {
      public: { items: [], total: 0 },
      paymentAttempts: 0,
    },
    states: {
      browsing: {
        tags: ["shopping"],
        on: {
          add: { actions: "addItem" },
          clear: { actions: "clearItems" },
          checkout: { target: "paying", cond: "hasItems" },
        },
      },
      paying: {
        tags: ["busy"],
        initial: "enteringCard",
        states: {
          enteringCard: {
            on: { submit: "authorizing" },
          },
          authorizing: {
            tags: ["waiting"],
            on: {
              approve: "#checkout.complete",
              decline: {
                target: "enteringCard",
                actions: "countAttempt",
              },
            },
          },
        },
        on: { cancel: "browsing" },
      },
      complete: {
        type: "final",
        tags: ["paid"],
      },
    },
  },
  {
    guards: {
      hasItems: (context) => context.public.items.length > 0,
    },
    actions: {
      addItem: assign((context, event) => ({
        public: {
          items: [...context.public.items, event.sku],
          total: context.public.total + event.price,
        },
      })),
      clearItems: assign({ public: () => ({ items: [], total: 0 }) }),
      countAttempt: assign({
        paymentAttempts: (context) => context.paymentAttempts + 1,
      }),
    },
  },
);
