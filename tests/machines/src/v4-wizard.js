// A questionnaire driven by eventless transitions and raised events. The initial `always`
// reads context supplied at creation, so it shows that the caller's context is merged in
// before the machine starts. It leaves `predictableActionArguments` off, so XState 4's legacy
// action order (assigns first) is covered too.
import { actions, assign, createMachine } from "xstate";

const { raise } = actions;

export const allowRead = () => true;

export const allowWrite = () => true;

export default createMachine({
  id: "wizard",
  initial: "start",
  context: {
    public: { answers: {}, answered: 0 },
    required: 2,
  },
  states: {
    start: {
      always: [
        { target: "review", cond: (context) => context.required <= 0 },
        { target: "question" },
      ],
    },
    question: {
      tags: ["asking"],
      always: {
        target: "review",
        cond: (context) => context.public.answered >= context.required,
      },
      on: {
        answer: {
          cond: (_context, event) => typeof event.key === "string",
          actions: [
            assign({
              public: (context, event) => ({
                ...context.public,
                answers: { ...context.public.answers, [event.key]: event.value },
              }),
            }),
            raise({ type: "answered" }),
          ],
        },
        answered: {
          actions: assign({
            public: (context) => ({
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
