// XState v5 checkout: a string-valued state beside a compound one, targetless assigns, a
// re-entering self-transition, tags, and a top-level final state with output.
import { assign, setup } from "xstate5";

export const allowRead = ({ machineInstanceName, authContext }) =>
  authContext.sub === machineInstanceName;

export const allowWrite = ({ machineInstanceName, authContext }) =>
  authContext.sub === machineInstanceName;

export default setup({
  guards: {
    hasItems: ({ context }) => context.public.items.length > 0,
  },
  actions: {
    addItem: assign(({ context, event }) => ({
      public: {
        items: [...context.public.items, event.sku],
        total: context.public.total + event.price,
      },
    })),
    clearItems: assign({ public: () => ({ items: [], total: 0 }) }),
    countAttempt: assign({
      paymentAttempts: ({ context }) => context.paymentAttempts + 1,
    }),
    countEntry: assign({
      cardEntries: ({ context }) => context.cardEntries + 1,
    }),
  },
}).createMachine({
  id: "checkout",
  initial: "browsing",
  context: {
    public: { items: [], total: 0 },
    paymentAttempts: 0,
    cardEntries: 0,
  },
  states: {
    browsing: {
      tags: ["shopping"],
      on: {
        add: { actions: "addItem" },
        clear: { actions: "clearItems" },
        checkout: { target: "paying", guard: "hasItems" },
      },
    },
    paying: {
      tags: ["busy"],
      initial: "enteringCard",
      states: {
        enteringCard: {
          entry: "countEntry",
          on: {
            submit: "authorizing",
            retype: { target: "enteringCard", reenter: true },
          },
        },
        authorizing: {
          tags: ["waiting"],
          on: {
            approve: "#checkout.complete",
            decline: { target: "enteringCard", actions: "countAttempt" },
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
  output: ({ context }) => ({ total: context.public.total }),
});
