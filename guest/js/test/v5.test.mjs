// XState 5 machines through the glue, checked against XState 5's official pure functions
// (`initialTransition`, `transition`) and against the effect lists the ABI promises.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, initialTransition, transition } from 'xstate5';
import { bundle, bundleSource, guestFor, ok, run } from './harness.mjs';

const TIMEOUT = { timeout: 20_000 };

/** Effect types the official action list implies (an independent reading of the ABI rules). */
function expectedTypes(actions, machine) {
  const types = [];
  const ids = [];
  for (const action of actions) {
    const p = action.params || {};
    let type = null;
    if (action.type === 'xstate.raise') type = typeof p.delay === 'number' ? 'schedule' : null;
    else if (action.type === 'xstate.sendTo') {
      type = typeof p.delay === 'number' ? 'schedule' : p.to && p.to.logic === machine ? 'enqueue' : 'send';
    } else if (action.type === 'xstate.cancel') type = 'cancel';
    else if (action.type === 'xstate.spawnChild') type = 'start';
    else if (action.type === 'xstate.stopChild') type = 'stop';
    else if (action.type === 'xstate.log') type = 'log';
    else if (!action.type.startsWith('xstate.')) type = 'exec';
    if (type) {
      types.push(type);
      ids.push(type === 'start' ? p.actorRef.id : type === 'stop' ? action.params.id : null);
    }
  }
  const dropped = new Set();
  ids.forEach((id, i) => {
    if (types[i] !== 'start') return;
    const j = types.findIndex((t, k) => k > i && t === 'stop' && ids[k] === id && !dropped.has(k));
    if (j !== -1) dropped.add(i).add(j);
  });
  return types.filter((_, i) => !dropped.has(i));
}

describe('xstate 5 machines', () => {
  test('a bundle importing npm:xstate@5 loads as an xstate 5 machine', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order5.js'));
    assert.deepEqual(guest.load, { ok: { abi: 2, xstateMajor: 5, exports: ['allowRead', 'allowWrite'] } });
  });

  test('every step matches the official initialTransition and transition', TIMEOUT, async () => {
    const { default: machine } = await import('./machines/order5.js');
    const guest = await guestFor(await bundle('order5.js'));
    const events = [
      { type: 'ADD', price: 3 },
      { type: 'PING' },
      { type: 'PONG' },
      { type: 'REMIND' },
      { type: 'LATER' },
      { type: 'NOW' },
      { type: 'SUBMIT' },
      { type: 'PACKED' },
      { type: 'HOLD' },
      { type: 'RESUME' },
      { type: 'TRANSIENT' },
      { type: 'BACK' },
      { type: 'PAID' },
    ];
    const steps = await run(guest, events);
    let [official, actions] = initialTransition(machine, {});
    let stored = machine.getPersistedSnapshot(official);
    const compare = (step, label) => {
      assert.deepEqual(step.snapshot, JSON.parse(JSON.stringify(stored)), `${label}: snapshot`);
      assert.deepEqual(step.state, official.value, `${label}: state`);
      assert.deepEqual(step.tags, [...official.tags], `${label}: tags`);
      assert.equal(step.done, official.status === 'done', `${label}: done`);
      assert.deepEqual(step.effects.map((e) => e.type), expectedTypes(actions, machine), `${label}: effects`);
    };
    compare(steps[0], 'init');
    events.forEach((event, index) => {
      const restored = createActor(machine, { snapshot: JSON.parse(JSON.stringify(stored)) }).getSnapshot();
      [official, actions] = transition(machine, restored, event);
      stored = machine.getPersistedSnapshot(official);
      compare(steps[index + 1], event.type);
    });
  });

  test('each kind of action becomes its effect', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order5.js'));
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
    const [later] = await effectsOf({ type: 'LATER' });
    assert.equal(later.type, 'schedule');
    assert.equal(later.delay, 250);
    assert.deepEqual(later.event, { type: 'SELF_LATER' });
    assert.equal(typeof later.id, 'string');
    // A nameless inline action is named by its (minified) source text.
    assert.deepEqual(await effectsOf({ type: 'NOW' }), [{ type: 'exec', action: '()=>{}' }]);
  });

  test('after timers and invokes start on entry and stop on exit', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order5.js'));
    const timer = 'xstate.after.TIMEOUT.order.review.payment.pending';
    const steps = await run(guest, [{ type: 'ADD', price: 1 }, { type: 'SUBMIT' }, { type: 'HOLD' }]);
    assert.deepEqual(steps[2].effects, [
      { type: 'schedule', id: timer, delay: 30000, event: { type: timer }, to: null },
      { type: 'start', id: 'charge', src: 'chargeCard' },
    ]);
    assert.deepEqual(steps[3].effects, [
      { type: 'cancel', id: timer },
      { type: 'stop', id: 'charge' },
    ]);
  });

  test('actors spawned inside assign are reported where they were spawned', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order5.js'));
    const steps = await run(guest, [{ type: 'SPAWN' }, { type: 'PING' }]);
    assert.deepEqual(steps[1].effects, [
      { type: 'exec', action: 'announce' },
      { type: 'start', id: 'helper', src: 'chargeCard' },
      { type: 'start', id: 'side', src: 'chargeCard' },
    ]);
    assert.deepEqual(Object.keys(steps[1].snapshot.children).sort(), ['helper', 'side']);
    assert.deepEqual(steps[2].effects, [{ type: 'enqueue', event: { type: 'PONG' } }]);
  });

  test('input and context: the given context is merged and passed as input', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle5.js'));
    const step = ok(await guest.init({ start: 5, extra: true }));
    assert.deepEqual(step.context, { count: 5, public: { label: 'toggle' }, start: 5, extra: true });
    const plain = ok(await guest.init({}));
    assert.deepEqual(plain.context, { count: 0, public: { label: 'toggle' } });
  });

  test('a bundle with its own copy of xstate 5 works', TIMEOUT, async () => {
    const own = await bundle('toggle5.js', { style: 'own' });
    assert.equal(own.includes('npm:xstate'), false);
    const guest = await guestFor(own);
    assert.equal(ok(guest.load).xstateMajor, 5);
    const steps = await run(guest, [{ type: 'TOGGLE' }, { type: 'TOGGLE' }], { start: 2 });
    assert.deepEqual(steps.map((s) => s.state), ['off', 'on', 'off']);
    assert.equal(steps[2].context.count, 3);
    assert.deepEqual(steps[1].logs, [{ level: 'info', message: 'turning on 2' }]);
  });

  test('a done machine ignores further events', TIMEOUT, async () => {
    const source = `
      import { createMachine } from 'xstate5';
      export default createMachine({
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
    assert.deepEqual(steps[2].effects, []);
  });

  test('a throwing guard is machine-threw and the input step stays usable', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order5.js'));
    const [initial] = await run(guest, []);
    const failed = await guest.transition(initial.snapshot, { type: 'BOOM' });
    assert.equal(failed.error.kind, 'machine-threw');
    assert.match(failed.error.message, /guard exploded/);
    ok(await guest.transition(initial.snapshot, { type: 'PING' }));
  });
});
