// An XState 5 toggle whose context comes from its input.
import { assign, setup } from 'xstate5';

export default setup({}).createMachine({
  id: 'toggle5',
  initial: 'off',
  context: ({ input }) => ({ count: input.start ?? 0, public: { label: 'toggle' } }),
  states: {
    off: {
      tags: ['idle'],
      on: {
        TOGGLE: {
          target: 'on',
          actions: assign({
            count: ({ context }) => {
              console.info('turning on', context.count);
              return context.count + 1;
            },
          }),
        },
      },
    },
    on: { tags: ['busy', 'lit'], on: { TOGGLE: 'off' } },
  },
});

export const allowRead = ({ authContext }) => authContext.sub === 'reader';
export const allowWrite = async ({ authContext }) => authContext.sub === 'writer';
