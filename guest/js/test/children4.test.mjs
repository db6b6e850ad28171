// XState 4 children beyond promises and callbacks: child machines run in the guest, persistent
// instances spawned through State Backed's runtime hook, and what machine code may ask of the
// host in each kind of call.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { AUTHORIZERS, bundle, bundleSource, guestFor, ok } from './harness.mjs';
import { hostFor, jsonAnswer } from './host.mjs';

const require = createRequire(import.meta.url);
const { interpret } = require('xstate');
const { SimulatedClock } = require('xstate/lib/SimulatedClock');
const TIMEOUT = { timeout: 20_000 };

describe('xstate 4 child machines', () => {
  test('an invoked machine runs in the guest and ends like under the interpreter', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('parent4.js'));
    const host = hostFor(guest);
    await host.init();
    await host.send({ type: 'START' });
    await host.settle({ untilMs: 0 });
    await host.send({ type: 'POKE' });
    await host.settle({ untilMs: 0 });
    await host.send({ type: 'POKE_LATER' });
    await host.settle({ untilMs: 200 });
    await host.send({ type: 'POKE_LATER' });
    await host.send({ type: 'UNPOKE' });
    await host.settle();
    assert.deepEqual(host.context(), { log: ['up', 1, 2], result: { steps: 2 } });
    assert.equal(host.state(), 'done');
    assert.ok(host.eventTypes().includes('done.invoke.kid'));
    assert.equal(host.nowMs, 500, 'the child finished on its own after-timer, a sleep operation');

    const { default: machine } = await import('./machines/parent4.js');
    const clock = new SimulatedClock();
    const service = interpret(machine, { clock }).start();
    service.send({ type: 'START' });
    service.send({ type: 'POKE' });
    service.send({ type: 'POKE_LATER' });
    clock.increment(200);
    service.send({ type: 'POKE_LATER' });
    service.send({ type: 'UNPOKE' });
    clock.increment(300);
    assert.equal(service.state.value, host.state());
    assert.deepEqual(service.state.context, host.context());
    service.stop();
  });
});

describe('persistent and ephemeral spawns through __statebacked_rt', () => {
  test('spawnPersistentInstance becomes a spawn-instance effect and a reference in context', TIMEOUT, async () => {
    // What @statebacked/machine's spawnPersistentInstance calls when the runtime hook exists.
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine } from 'xstate';
      const spawnPersistentInstance = (descriptor, options) => globalThis.__statebaked_rt.spawn(descriptor, options);
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: { child: null },
        states: {
          a: {
            on: {
              SPAWN: {
                target: 'b',
                actions: assign({
                  child: () => spawnPersistentInstance(
                    { machineName: 'worker', machineInstanceName: 'w-1' },
                    { name: 'helper', context: { owner: 'a' } },
                  ),
                }),
              },
            },
          },
          b: {},
        },
      });
      ${AUTHORIZERS}`));
    const initial = ok(await guest.init());
    const step = ok(await guest.transition(initial.snapshot, { type: 'SPAWN' }));
    assert.deepEqual(step.effects, [
      {
        type: 'spawn-instance',
        id: 'helper',
        machineName: 'worker',
        machineInstanceName: 'w-1',
        machineVersionId: null,
        context: { owner: 'a' },
      },
    ]);
    assert.equal(step.token, null);
    assert.deepEqual(step.context.child, {
      machineName: 'worker',
      machineInstanceName: 'w-1',
      type: 'statebacked.instance',
      id: 'helper',
    });
  });

  test('a persistent instance as an invoke source is created by the host, not run', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: { who: 'x' },
        states: {
          a: { on: { GO: 'b' } },
          b: {
            invoke: {
              id: 'ledger',
              src: { type: 'statebacked.invoke', machineName: 'ledger', machineInstanceName: 'main', machineVersionId: 'ver_1' },
              data: { owner: (c) => c.who },
            },
            on: { LEAVE: 'a' },
          },
        },
      });
      ${AUTHORIZERS}`));
    const initial = ok(await guest.init());
    const go = ok(await guest.transition(initial.snapshot, { type: 'GO' }));
    assert.deepEqual(go.effects, [
      { type: 'spawn-instance', id: 'ledger', machineName: 'ledger', machineInstanceName: 'main', machineVersionId: 'ver_1', context: { owner: 'x' } },
    ]);
    const leave = ok(await guest.transition(go.snapshot, { type: 'LEAVE' }));
    assert.deepEqual(leave.effects, []);
  });

  test('spawnEphemeralInstance spawns with the guest\'s spawn, even from a bundled xstate', TIMEOUT, async () => {
    const guest = await guestFor(
      await bundleSource(
        `
        import { assign, createMachine } from 'xstate';
        const spawnEphemeralInstance = (entity, name) => globalThis.__statebacked_rt.spawn(entity, name);
        export default createMachine({
          predictableActionArguments: true,
          initial: 'a',
          context: { job: null, out: null },
          states: {
            a: { on: { GO: { target: 'b', actions: assign({ job: () => spawnEphemeralInstance(Promise.resolve(41).then((n) => n + 1), 'job') }) } } },
            b: { on: { 'done.invoke.job': { target: 'c', actions: assign({ out: (_, e) => e.data }) } } },
            c: {},
          },
        });
        ${AUTHORIZERS}`,
        { style: 'own' },
      ),
    );
    const host = hostFor(guest);
    await host.init();
    const go = await host.send({ type: 'GO' });
    assert.deepEqual(go.effects, [{ type: 'start', id: 'job', src: 'job' }]);
    await host.settle();
    assert.equal(host.state(), 'c');
    assert.equal(host.context().out, 42);
  });
});

describe('what machine code can ask of the host in each call', () => {
  test('fetch rejects while loading and in authorizers', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      globalThis.loadFetch = fetch('https://api.example.test/boot').then(() => 'resolved', (e) => e.message);
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = async () => {
        try { await fetch('https://api.example.test/acl'); return 'fetched'; } catch (e) { console.log(e.message); return false; }
      };
      export const allowWrite = async () => (await globalThis.loadFetch) !== 'resolved';`));
    const read = ok(await guest.allowRead({}));
    assert.equal(read.allowed, false);
    assert.match(read.logs[0].message, /only available to machine actions and services/);
    assert.deepEqual(ok(await guest.allowWrite({})).allowed, true);
  });

  test('timers are inert in a pure step and host sleeps in a service', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: { timer: 0 },
        states: {
          a: {
            entry: assign({ timer: () => setTimeout(() => { globalThis.fired = true; }, 10) }),
            on: { WAIT: 'b' },
          },
          b: {
            invoke: { id: 'nap', src: () => new Promise((resolve) => setTimeout(() => resolve('rested'), 250)), onDone: 'c' },
          },
          c: {},
        },
      });
      ${AUTHORIZERS}`));
    const host = hostFor(guest, { answer: () => jsonAnswer({}) });
    const initial = await host.init();
    assert.equal(typeof initial.context.timer, 'number');
    assert.equal(initial.token, null);
    await host.send({ type: 'WAIT' });
    assert.deepEqual(
      host.ops.map(({ kind, ms }) => ({ kind, ms })),
      [{ kind: 'sleep', ms: 250 }],
    );
    await host.settle();
    assert.equal(host.state(), 'c');
    assert.equal(host.delivered('done.invoke.nap').data, 'rested');
    assert.equal(globalThis.fired, undefined);
  });
});
