// XState v5 parallel states: two regions that must both finish before the parallel parent's
// `onDone`, then a parallel state whose value has several keys, one of them nested.
import { assign, setup } from "xstate5";

export const allowRead = () => true;

export const allowWrite = ({ authContext }) => authContext.role === "editor";

export default setup({
  guards: {
    hasTitle: ({ context }) => context.public.title.length > 0,
  },
}).createMachine({
  id: "upload",
  initial: "drafting",
  context: { public: { fileName: null, title: "" } },
  states: {
    drafting: {
      type: "parallel",
      states: {
        file: {
          initial: "empty",
          states: {
            empty: {
              on: {
                attach: {
                  target: "attached",
                  actions: assign({
                    public: ({ context, event }) => ({ ...context.public, fileName: event.name }),
                  }),
                },
              },
            },
            attached: { type: "final", tags: ["has-file"] },
          },
        },
        details: {
          initial: "editing",
          states: {
            editing: {
              on: {
                setTitle: {
                  actions: assign({
                    public: ({ context, event }) => ({ ...context.public, title: event.title }),
                  }),
                },
                confirm: { target: "confirmed", guard: "hasTitle" },
              },
            },
            confirmed: { type: "final" },
          },
        },
      },
      onDone: "published",
    },
    published: {
      type: "parallel",
      tags: ["live"],
      states: {
        visibility: {
          initial: "listed",
          states: {
            listed: { on: { hide: "unlisted" } },
            unlisted: { tags: ["hidden"], on: { show: "listed" } },
          },
        },
        comments: {
          initial: "open",
          states: {
            open: {
              initial: "anyone",
              states: {
                anyone: { on: { restrict: "members" } },
                members: {},
              },
              on: { lockComments: "closed" },
            },
            closed: {},
          },
        },
      },
      on: { unpublish: "drafting" },
    },
  },
});
