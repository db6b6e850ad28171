// An XState 4 machine with a callback service: it reports back, answers pings, ticks on an
// interval, and counts its cleanups in `globalThis.callbackCleanups`.
import { assign, createMachine, send } from 'xstate';

export default createMachine(
  {
    id: 'chatty',
    predictableActionArguments: true,
    initial: 'idle',
    context: { pongs: [], ticks: 0, started: false },
    states: {
      idle: { on: { OPEN: 'open' } },
      open: {
        invoke: { id: 'socket', src: 'socket' },
        on: {
          STARTED: { actions: assign({ started: true }) },
          PING: { actions: send((_, event) => ({ type: 'PING', n: event.n }), { to: 'socket' }) },
          PONG: { actions: assign({ pongs: (context, event) => [...context.pongs, event.n] }) },
          TICK: { actions: assign({ ticks: (context) => context.ticks + 1 }) },
          CLOSE: 'closed',
        },
      },
      closed: {},
    },
  },
  {
    services: {
      socket: () => (sendBack, receive) => {
        sendBack('STARTED');
        receive((event) => sendBack({ type: 'PONG', n: event.n * 10 }));
        const interval = setInterval(() => sendBack('TICK'), 1000);
        return () => {
          clearInterval(interval);
          globalThis.callbackCleanups = (globalThis.callbackCleanups || 0) + 1;
        };
      },
    },
  },
);

export const allowRead = () => true;
export const allowWrite = () => true;
