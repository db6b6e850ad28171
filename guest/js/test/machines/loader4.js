// An XState 4 machine whose invoked promise service fetches, in State Backed's style.
import { assign, createMachine } from 'xstate';

export default createMachine(
  {
    id: 'loader',
    predictableActionArguments: true,
    initial: 'idle',
    context: { user: null, error: null },
    states: {
      idle: { on: { LOAD: 'loading' } },
      loading: {
        invoke: {
          id: 'fetchUser',
          src: 'fetchUser',
          onDone: { target: 'loaded', actions: assign({ user: (_, event) => event.data }) },
          onError: {
            target: 'failed',
            actions: assign({ error: (_, event) => ({ name: event.data.name, message: event.data.message }) }),
          },
        },
        on: { CANCEL: 'cancelled' },
      },
      loaded: {},
      failed: {},
      cancelled: {},
    },
  },
  {
    services: {
      fetchUser: async (_, event) => {
        const response = await fetch(`https://api.example.test/users/${event.id}`, {
          headers: { accept: 'application/json' },
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const user = await response.json();
        return { ...user, etag: response.headers.get('etag') };
      },
    },
  },
);

export const allowRead = () => true;
export const allowWrite = () => true;
