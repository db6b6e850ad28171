// XState 5 children: a fetching promise actor, a callback actor, a spawned promise and a child
// machine that talks to its parent.
import { assign, createMachine, fromCallback, fromPromise, sendParent, sendTo, setup, spawnChild, stopChild } from 'xstate5';

const child = createMachine({
  id: 'child',
  initial: 'working',
  context: { step: 0 },
  states: {
    working: {
      entry: sendParent({ type: 'CHILD_UP' }),
      on: {
        NUDGE: {
          actions: [assign({ step: ({ context }) => context.step + 1 }), sendParent(({ context }) => ({ type: 'CHILD_STEP', step: context.step }))],
        },
      },
      after: { 500: 'finished' },
    },
    finished: { type: 'final' },
  },
  output: ({ context }) => ({ steps: context.step }),
});

export default setup({
  actors: {
    fetchUser: fromPromise(async ({ input, signal }) => {
      const response = await fetch(`https://api.example.test/users/${input.id}`, { signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    }),
    socket: fromCallback(({ sendBack, receive }) => {
      sendBack({ type: 'STARTED' });
      receive((event) => sendBack({ type: 'PONG', n: event.n * 10 }));
      return () => {
        globalThis.socketCleanups = (globalThis.socketCleanups || 0) + 1;
      };
    }),
    child,
  },
}).createMachine({
  id: 'loader5',
  initial: 'idle',
  context: { user: null, error: null, pongs: [], log: [], result: null },
  states: {
    idle: {
      on: {
        LOAD: 'loading',
        OPEN: 'open',
        START: 'parenting',
        SPAWN: { actions: spawnChild('socket', { id: 'side' }) },
        UNSPAWN: { actions: stopChild('side') },
        PING_SIDE: { actions: sendTo('side', ({ event }) => ({ type: 'PING', n: event.n })) },
        PONG: { actions: assign({ pongs: ({ context, event }) => [...context.pongs, event.n] }) },
      },
    },
    loading: {
      invoke: {
        id: 'fetchUser',
        src: 'fetchUser',
        input: ({ event }) => ({ id: event.id }),
        onDone: { target: 'loaded', actions: assign({ user: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => ({ name: event.error.name, message: event.error.message }) }) },
      },
      on: { CANCEL: 'idle' },
    },
    open: {
      invoke: { id: 'socket', src: 'socket' },
      on: {
        PING: { actions: sendTo('socket', ({ event }) => ({ type: 'PING', n: event.n })) },
        PONG: { actions: assign({ pongs: ({ context, event }) => [...context.pongs, event.n] }) },
        CLOSE: 'idle',
      },
    },
    parenting: {
      invoke: { id: 'kid', src: 'child', onDone: { target: 'idle', actions: assign({ result: ({ event }) => event.output }) } },
      on: {
        CHILD_UP: { actions: assign({ log: ({ context }) => [...context.log, 'up'] }) },
        CHILD_STEP: { actions: assign({ log: ({ context, event }) => [...context.log, event.step] }) },
        POKE: { actions: sendTo('kid', { type: 'NUDGE' }) },
      },
    },
    loaded: {},
    failed: {},
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
