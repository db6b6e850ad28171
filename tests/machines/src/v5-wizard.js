// XState v5 eventless transitions and `raise`. The initial `always` reads context supplied at
// creation, so it shows that the caller's context is merged in before the machine starts.
import { assign, raise, setup } from "xstate5";

export const allowRead = () => true;

export const allowWrite = () => true;

export default setup({
  guards: {
    nothingRequired: ({ context }) => context.required <= 0,
    enoughAnswers: ({ context }) => context.public.answered >= context.required,
    hasKey: ({ event }) => typeof event.key === "string",
  },
}).createMachine({
  id: "wizard",
  initial: "start",
  context: {
    public: { answers: {}, answered: 0 },
    required: 2,
  },
  states: {
    start: {
      always: [{ target: "review", guard: "nothingRequired" }, { target: "question" }],
    },
    question: {
      tags: ["asking"],
      always: { target: "review", guard: "enoughAnswers" },
      on: {
        answer: {
          guard: "hasKey",
          actions: [
            assign({
              public: ({ context, event }) => ({
                ...context.public,
                answers: { ...context.public.answers, [event.key]: event.value },
              }),
            }),
            raise({ type: "answered" }),
          ],
        },
        answered: {
          actions: assign({
            public: ({ context }) => ({
              ...context.public,
              answered: Object.keys(context.public.answers).length,
            }),
          }),
        },
      },
    },
    review: {
      tags: ["reviewing"],
      on: {
        confirm: "finished",
        reset: {
          target: "start",
          actions: assign({ public: () => ({ answers: {}, answered: 0 }) }),
        },
      },
    },
    finished: { type: "final" },
  },
});
