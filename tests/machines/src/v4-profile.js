// A user profile whose authorizers look at the state, the context and the event. Its initial
// context has a `public` block; instances are created with part of a context, which is merged
// over it one level deep.
import { assign, createMachine } from "xstate";

export const allowRead = ({ state, context, authContext }) =>
  state === "visible" || authContext.sub === context.owner;

export const allowWrite = (args) => {
  const { authContext } = args;
  if (args.type === "initialization") {
    return typeof args.context.owner === "string" && args.context.owner === authContext.sub;
  }
  if (args.event.type === "unlock") {
    return authContext.role === "admin";
  }
  if (args.state === "locked") {
    return false;
  }
  return authContext.sub === args.context.owner;
};

export default createMachine({
  id: "profile",
  predictableActionArguments: true,
  initial: "hidden",
  context: {
    owner: null,
    public: { displayName: "anonymous", edits: 0 },
  },
  states: {
    hidden: {
      on: { publish: "visible", lock: "locked" },
    },
    visible: {
      tags: ["public"],
      on: { unpublish: "hidden", lock: "locked" },
    },
    locked: {
      tags: ["locked"],
      on: { unlock: "hidden" },
    },
  },
  on: {
    rename: {
      cond: (_context, event) => typeof event.name === "string" && event.name.length > 0,
      actions: assign({
        public: (context, event) => ({
          ...context.public,
          displayName: event.name,
          edits: (context.public.edits ?? 0) + 1,
        }),
      }),
    },
  },
});
