// An XState 4 machine touching most features: nesting, parallel regions, history, guards,
// final states, delayed events, invoked services, sends to parent, children and other
// instances, custom and inline actions, logs and raises.
import { actions, assign, cancel, createMachine, send, sendParent } from 'xstate';

const { log, raise } = actions;

export default createMachine(
  {
    id: 'order',
    predictableActionArguments: true,
    initial: 'draft',
    context: { items: 0, total: 0, notes: [], public: { stage: 'draft' } },
    states: {
      draft: {
        entry: ['announce', log((context) => ({ items: context.items }), 'draft entered')],
        on: {
          ADD: { actions: assign({ items: (c, e) => c.items + 1, total: (c, e) => c.total + e.price }) },
          SUBMIT: [
            { target: 'review', cond: (c) => c.items > 0 },
            { actions: 'rejectEmpty' },
          ],
          PING: { actions: send({ type: 'PONG' }) },
          PONG: { actions: assign({ notes: (c) => [...c.notes, 'pong'] }) },
          REMIND: { actions: send({ type: 'REMINDER' }, { delay: 5000, id: 'reminder' }) },
          UNREMIND: { actions: cancel('reminder') },
          TELL_PARENT: { actions: sendParent({ type: 'CHILD_SAYS', n: 1 }) },
          TELL_OTHER: {
            actions: send((c) => ({ type: 'HELLO', items: c.items }), {
              to: () => ({
                type: 'statebacked.instance',
                id: 'other',
                machineName: 'ledger',
                machineInstanceName: 'main',
              }),
            }),
          },
          LATER: { actions: raise({ type: 'SELF_LATER' }, { delay: 250 }) },
          NOW: { actions: [raise({ type: 'SELF_NOW' }), () => {}] },
          SELF_NOW: { actions: assign({ notes: (c) => [...c.notes, 'now'] }) },
          BOOM: { cond: () => { throw new Error('guard exploded'); }, target: 'review' },
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
                after: { 30000: 'timedOut' },
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
  },
  {
    actions: { announce: () => {}, rejectEmpty: () => {}, thank: () => {} },
    services: { chargeCard: () => new Promise(() => {}) },
  },
);

export const allowRead = () => true;
export const allowWrite = () => true;
