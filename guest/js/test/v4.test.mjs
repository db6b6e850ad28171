// XState 4 machines through the glue, checked against XState 4's own interpreter and against
// the effect lists the ABI promises.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { bundle, bundleSource, guestFor, ok, run } from './harness.mjs';

const require = createRequire(import.meta.url);
const { interpret } = require('xstate');
const { SimulatedClock } = require('xstate/lib/SimulatedClock');
const TIMEOUT = { timeout: 20_000 };

const ORDER_EVENTS = [
  { type: 'ADD', price: 3 },
  { type: 'PING' },
  { type: 'NOW' },
  { type: 'SUBMIT' },
  { type: 'PACKED' },
  { type: 'HOLD' },
  { type: 'RESUME' },
  { type: 'TRANSIENT' },
  { type: 'BACK' },
  { type: 'PAID' },
];

/** Steps like a host would: events the machine sends itself are delivered right after. */
async function hostRun(guest, events) {
  const steps = [ok(await guest.init())];
  const deliver = async (event) => {
    const step = ok(await guest.transition(steps.at(-1).snapshot, event));
    steps.push(step);
    for (const effect of step.effects) {
      if (effect.type === 'enqueue') await deliver(effect.event);
    }
  };
  for (const event of events) await deliver(event);
  return steps;
}

describe('xstate 4 machines', () => {
  test('a smply-built bundle loads as an xstate 4 machine with its exports', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    assert.deepEqual(guest.load, { ok: { abi: 2, xstateMajor: 4, exports: ['allowRead', 'allowWrite'] } });
  });

  test('states, context, tags and done match the xstate 4 interpreter', TIMEOUT, async () => {
    const { default: machine } = await import('./machines/order4.js');
    const service = interpret(machine, { clock: new SimulatedClock() }).start();
    const guest = await guestFor(await bundle('order4.js'));
    const steps = await hostRun(guest, ORDER_EVENTS);
    const final = steps.at(-1);
    for (const event of ORDER_EVENTS) service.send(event);
    assert.deepEqual(final.state, service.state.value);
    assert.deepEqual(final.context, service.state.context);
    assert.deepEqual(final.tags, [...service.state.tags]);
    assert.equal(final.done, service.state.done);
    assert.deepEqual(final.context.notes, ['pong', 'now']);
    service.stop();
  });

  test('history survives the snapshot round trip', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const steps = await run(guest, [
      { type: 'ADD', price: 1 },
      { type: 'SUBMIT' },
      { type: 'PACKED' },
      { type: 'HOLD' },
      { type: 'RESUME' },
    ]);
    assert.deepEqual(steps.at(-1).state, { review: { payment: 'pending', shipping: 'labelled' } });
  });

  test('stored snapshots carry no actions and no previous state', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const steps = await run(guest, [{ type: 'ADD', price: 1 }, { type: 'SUBMIT' }]);
    for (const step of steps) {
      for (const key of ['actions', 'history', 'meta', 'event']) {
        assert.equal(key in step.snapshot, false, `${key} is stored`);
      }
    }
  });

  test('entry and exit of a state with an invoke and an after timer', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const timer = 'xstate.after(30000)#order.review.payment.pending';
    const steps = await run(guest, [{ type: 'ADD', price: 1 }, { type: 'SUBMIT' }, { type: 'HOLD' }]);
    assert.deepEqual(steps[2].effects, [
      { type: 'start', id: 'charge', src: 'chargeCard' },
      { type: 'schedule', id: timer, delay: 30000, event: { type: timer }, to: null },
    ]);
    assert.deepEqual(steps[3].effects, [
      { type: 'cancel', id: timer },
      { type: 'stop', id: 'charge' },
    ]);
  });

  test('each kind of action becomes its effect', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const [initial] = await run(guest, []);
    assert.deepEqual(initial.effects, [
      { type: 'exec', action: 'announce' },
      { type: 'log', label: 'draft entered', value: { items: 0 } },
    ]);
    const effectsOf = async (event) => ok(await guest.transition(initial.snapshot, event)).effects;
    assert.deepEqual(await effectsOf({ type: 'PING' }), [{ type: 'enqueue', event: { type: 'PONG' } }]);
    assert.deepEqual(await effectsOf({ type: 'REMIND' }), [
      { type: 'schedule', id: 'reminder', delay: 5000, event: { type: 'REMINDER' }, to: null },
    ]);
    assert.deepEqual(await effectsOf({ type: 'UNREMIND' }), [{ type: 'cancel', id: 'reminder' }]);
    assert.deepEqual(await effectsOf({ type: 'TELL_PARENT' }), [
      { type: 'send', to: { kind: 'parent' }, event: { type: 'CHILD_SAYS', n: 1 } },
    ]);
    assert.deepEqual(await effectsOf({ type: 'TELL_OTHER' }), [
      {
        type: 'send',
        to: { kind: 'instance', machineName: 'ledger', machineInstanceName: 'main' },
        event: { type: 'HELLO', items: 0 },
      },
    ]);
    assert.deepEqual(await effectsOf({ type: 'LATER' }), [
      { type: 'schedule', id: 'SELF_LATER', delay: 250, event: { type: 'SELF_LATER' }, to: null },
    ]);
    assert.deepEqual(await effectsOf({ type: 'SUBMIT' }), [{ type: 'exec', action: 'rejectEmpty' }]);
    const now = await effectsOf({ type: 'NOW' });
    assert.equal(now.length, 1);
    assert.equal(now[0].type, 'exec');
  });

  test('a service started and stopped in the same step is not reported', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const steps = await run(guest, [{ type: 'ADD', price: 1 }, { type: 'SUBMIT' }, { type: 'TRANSIENT' }]);
    const ids = steps.at(-1).effects.filter((e) => e.type === 'start' || e.type === 'stop');
    assert.deepEqual(ids, [
      { type: 'stop', id: 'charge' },
      { type: 'start', id: 'charge', src: 'chargeCard' },
    ]);
  });

  test('spawn inside assign is reported as a start before the actions', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('spawn4.js'));
    const steps = await run(guest, [{ type: 'GO' }]);
    assert.deepEqual(steps[1].effects, [
      { type: 'start', id: 'worker-1', src: 'worker-1' },
      { type: 'exec', action: 'started' },
    ]);
    assert.deepEqual(steps[1].context, { worker: { id: 'worker-1' } });
  });

  test('the given context is merged over the initial one before entry actions run', TIMEOUT, async () => {
    const source = `
      import { assign, createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        context: { a: 1, b: 2, seen: null },
        entry: assign({ seen: (c) => c.a + c.b }),
        initial: 'idle',
        states: { idle: {} },
      });
      export const allowRead = () => true;
      export const allowWrite = () => true;`;
    const guest = await guestFor(await bundleSource(source));
    const step = ok(await guest.init({ a: 10 }));
    assert.deepEqual(step.context, { a: 10, b: 2, seen: 12 });
  });

  test('a machine in its final state ignores further events', TIMEOUT, async () => {
    const source = `
      import { createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        on: { AGAIN: '.a' },
        states: { a: { on: { END: 'z' } }, z: { type: 'final' } },
      });
      export const allowRead = () => true;
      export const allowWrite = () => true;`;
    const guest = await guestFor(await bundleSource(source));
    const steps = await run(guest, [{ type: 'END' }, { type: 'AGAIN' }]);
    assert.equal(steps[1].done, true);
    assert.equal(steps[2].state, 'z');
    assert.deepEqual(steps[2].snapshot, steps[1].snapshot);
    assert.deepEqual(steps[2].effects, []);
  });

  test('a bundle with its own copy of xstate 4 works', TIMEOUT, async () => {
    const own = await bundle('toggle4.js', { style: 'own' });
    assert.equal(own.includes('npm:xstate'), false);
    const guest = await guestFor(own);
    assert.equal(ok(guest.load).xstateMajor, 4);
    const steps = await run(guest, [{ type: 'TOGGLE' }, { type: 'TOGGLE' }]);
    assert.deepEqual(steps.map((s) => s.state), ['off', 'on', 'off']);
    assert.deepEqual(steps[1].tags, ['busy', 'lit']);
    assert.equal(steps[2].context.count, 1);
  });

  test('console output of machine code comes back as logs', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    const steps = await run(guest, [{ type: 'TOGGLE' }]);
    assert.equal('logs' in steps[0], false);
    assert.deepEqual(steps[1].logs, [{ level: 'log', message: 'turning on 0' }]);
  });
});
