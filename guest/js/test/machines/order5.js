// An XState 5 machine touching most features (the XState 5 twin of order4.js).
import {
  assign,
  cancel,
  enqueueActions,
  fromPromise,
  log,
  raise,
  sendParent,
  sendTo,
  setup,
  spawnChild,
} from 'xstate5';

export default setup({
  actors: { chargeCard: fromPromise(() => new Promise(() => {})) },
  actions: { announce: () => {}, rejectEmpty: () => {}, thank: () => {} },
  guards: { hasItems: ({ context }) => context.items > 0 },
  delays: { TIMEOUT: 30000 },
}).createMachine({
  id: 'order',
  initial: 'draft',
  context: { items: 0, total: 0, notes: [], public: { stage: 'draft' } },
  states: {
    draft: {
      entry: ['announce', log(({ context }) => ({ items: context.items }), 'draft entered')],
      on: {
        ADD: {
          actions: assign({
            items: ({ context }) => context.items + 1,
            total: ({ context, event }) => context.total + event.price,
          }),
        },
        SUBMIT: [{ target: 'review', guard: 'hasItems' }, { actions: 'rejectEmpty' }],
        PING: { actions: sendTo(({ self }) => self, { type: 'PONG' }) },
        PONG: { actions: assign({ notes: ({ context }) => [...context.notes, 'pong'] }) },
        REMIND: { actions: raise({ type: 'REMINDER' }, { delay: 5000, id: 'reminder' }) },
        UNREMIND: { actions: cancel('reminder') },
        TELL_PARENT: { actions: sendParent({ type: 'CHILD_SAYS', n: 1 }) },
        TELL_OTHER: {
          actions: sendTo(
            () => ({
              type: 'statebacked.instance',
              id: 'other',
              machineName: 'ledger',
              machineInstanceName: 'main',
            }),
            ({ context }) => ({ type: 'HELLO', items: context.items }),
          ),
        },
        LATER: { actions: raise({ type: 'SELF_LATER' }, { delay: 250 }) },
        NOW: { actions: [raise({ type: 'SELF_NOW' }), () => {}] },
        SELF_NOW: { actions: assign({ notes: ({ context }) => [...context.notes, 'now'] }) },
        SPAWN: {
          actions: [
            enqueueActions(({ enqueue }) => enqueue('announce')),
            assign({ helper: ({ spawn }) => spawn('chargeCard', { id: 'helper' }) }),
            spawnChild('chargeCard', { id: 'side' }),
          ],
        },
        BOOM: {
          guard: () => {
            throw new Error('guard exploded');
          },
          target: 'review',
        },
      },
    },
    review: {
      type: 'parallel',
      tags: ['reviewing'],
      states: {
        payment: {
          initial: 'pending',
          states: {
            pending: {
              invoke: { id: 'charge', src: 'chargeCard' },
              after: { TIMEOUT: 'timedOut' },
              on: { PAID: 'paid' },
            },
            paid: { type: 'final' },
            timedOut: {},
          },
        },
        shipping: {
          initial: 'packing',
          states: {
            packing: { on: { PACKED: 'labelled' } },
            labelled: { on: { BACK: 'packing' } },
            hist: { type: 'history' },
          },
        },
      },
      on: { HOLD: 'onHold', TRANSIENT: 'passing' },
      onDone: 'complete',
    },
    passing: { invoke: { id: 'blip', src: 'chargeCard' }, always: 'review.shipping.hist' },
    onHold: { on: { RESUME: 'review.shipping.hist' } },
    complete: { type: 'final', entry: 'thank' },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
