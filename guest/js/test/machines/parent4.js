// An XState 4 machine that invokes a child machine, talks to it, and waits for it to finish.
import { assign, cancel, createMachine, send, sendParent } from 'xstate';
const child = createMachine({
  id: 'child',
  predictableActionArguments: true,
  initial: 'working',
  context: { step: 0 },
  states: {
    working: {
      entry: sendParent({ type: 'CHILD_UP' }),
      on: { NUDGE: { actions: [assign({ step: (c) => c.step + 1 }), sendParent((c) => ({ type: 'CHILD_STEP', step: c.step }))] } },
      after: { 500: 'finished' },
    },
    finished: { type: 'final', data: (c) => ({ steps: c.step }) },
  },
});
export default createMachine({
  id: 'parent',
  predictableActionArguments: true,
  initial: 'idle',
  context: { log: [], result: null },
  states: {
    idle: { on: { START: 'running' } },
    running: {
      invoke: { id: 'kid', src: child, onDone: { target: 'done', actions: assign({ result: (_, e) => e.data }) } },
      on: {
        CHILD_UP: { actions: assign({ log: (c) => [...c.log, 'up'] }) },
        CHILD_STEP: { actions: assign({ log: (c, e) => [...c.log, e.step] }) },
        POKE: { actions: send({ type: 'NUDGE' }, { to: 'kid' }) },
        POKE_LATER: { actions: send({ type: 'NUDGE' }, { to: 'kid', delay: 100, id: 'later' }) },
        UNPOKE: { actions: cancel('later') },
      },
    },
    done: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
