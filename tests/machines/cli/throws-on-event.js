import { assign, createMachine } from "npm:xstate";
export const allowRead = () => true;
export const allowWrite = () => true;
export default createMachine({
  predictableActionArguments: true,
  initial: "idle",
  context: { public: { pokes: 0 } },
  states: {
    idle: {
      on: {
        poke: { actions: assign({ public: (c) => ({ pokes: c.public.pokes + 1 }) }) },
        explode: {
          actions: assign(() => {
            throw new Error("boom: explode is not allowed here");
          }),
        },
      },
    },
  },
});
