// A State Backed style XState 4 machine: toggles, counts, logs, and guards reads and writes.
import { assign, createMachine } from 'xstate';

export default createMachine({
  id: 'toggle',
  predictableActionArguments: true,
  initial: 'off',
  context: { count: 0, public: { label: 'toggle' } },
  states: {
    off: {
      tags: ['idle'],
      on: {
        TOGGLE: {
          target: 'on',
          actions: assign({
            count: (context) => {
              console.log('turning on', context.count);
              return context.count + 1;
            },
          }),
        },
      },
    },
    on: { tags: ['busy', 'lit'], on: { TOGGLE: 'off' } },
  },
});

export function allowRead({ authContext }) {
  return authContext.sub === 'reader' || authContext.sub === 'writer';
}

export function allowWrite({ type, authContext, event }) {
  if (authContext.sub === 'thrower') throw new Error('authorizer exploded');
  if (type === 'initialization') return authContext.sub === 'writer';
  return authContext.sub === 'writer' && event.type !== 'FORBIDDEN';
}
