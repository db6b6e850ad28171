// XState 4 `spawn` inside `assign`: without an interpreter the entity is lost, so the guest's
// `npm:xstate` reports it.
import { assign, createMachine, spawn } from 'xstate';

export default createMachine({
  id: 'spawner',
  predictableActionArguments: true,
  initial: 'idle',
  context: { worker: null },
  states: {
    idle: {
      on: {
        GO: {
          target: 'busy',
          actions: [assign({ worker: () => spawn(new Promise(() => {}), 'worker-1') }), 'started'],
        },
      },
    },
    busy: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
