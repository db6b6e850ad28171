// A publishing flow built on parallel states: two regions that must both reach a final state
// before the parallel parent is done (`onDone`), then a second parallel state whose value has
// several keys.
import { assign, createMachine } from "xstate";

export const allowRead = () => true;

export const allowWrite = ({ authContext }) => authContext.role === "editor";

export default createMachine({
  id: "upload",
  predictableActionArguments: true,
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
                    public: (context, event) => ({
                      ...context.public,
                      fileName: event.name,
                    }),
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
                    public: (context, event) => ({
                      ...context.public,
                      title: event.title,
                    }),
                  }),
                },
                confirm: {
                  target: "confirmed",
                  cond: (context) => context.public.title.length > 0,
                },
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
            open: { on: { lockComments: "closed" } },
            closed: {},
          },
        },
      },
      on: { unpublish: "drafting" },
    },
  },
});
