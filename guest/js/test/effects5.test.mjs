// Running XState 5 effects after the commit (ABI version 2), checked against XState 5's own
// actor where the behaviour is observable.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, waitFor } from 'xstate5';
import { AUTHORIZERS, bundle, bundleSource, guestFor, ok } from './harness.mjs';
import { hostFor, jsonAnswer, withFetch } from './host.mjs';

const TIMEOUT = { timeout: 20_000 };
const USER = { id: 3, name: 'Grace' };

/** The machine as XState 5's own actor runs it, with `respond` standing in for the network. */
async function actorRun(respond, events, until) {
  const { default: machine } = await import('./machines/loader5.js');
  const seen = [];
  const actor = createActor(machine, { inspect: (e) => e.type === '@xstate.event' && seen.push(e.event) });
  actor.start();
  const snapshot = await withFetch(respond, async () => {
    for (const event of events) actor.send(event);
    return waitFor(actor, until);
  });
  actor.stop();
  return { snapshot, seen };
}

describe('xstate 5 promise actors', () => {
  test('a fetching promise actor ends as under XState 5', TIMEOUT, async () => {
    const reference = await actorRun(
      async () => new Response(JSON.stringify(USER)),
      [{ type: 'LOAD', id: 3 }],
      (s) => !s.matches('loading'),
    );
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest, { answer: () => jsonAnswer(USER) });
    await host.init();
    const load = await host.send({ type: 'LOAD', id: 3 });
    assert.deepEqual(load.effects, [{ type: 'start', id: 'fetchUser', src: 'fetchUser' }]);
    await host.settle();

    assert.equal(host.requests[0].url, 'https://api.example.test/users/3');
    const done = reference.seen.find((e) => e.type === 'xstate.done.actor.fetchUser');
    assert.deepEqual(host.delivered('xstate.done.actor.fetchUser'), done);
    assert.deepEqual(done, { type: 'xstate.done.actor.fetchUser', output: USER, actorId: 'fetchUser' });
    assert.equal(host.state(), reference.snapshot.value);
    assert.deepEqual(host.context(), reference.snapshot.context);
  });

  test('a rejection is xstate.error.actor with the error as name and message', TIMEOUT, async () => {
    const reference = await actorRun(
      async () => new Response('', { status: 503 }),
      [{ type: 'LOAD', id: 3 }],
      (s) => !s.matches('loading'),
    );
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest, { answer: () => ({ ok: true, status: 503, headers: {}, body: '' }) });
    await host.init();
    await host.send({ type: 'LOAD', id: 3 });
    await host.settle();
    assert.deepEqual(host.delivered('xstate.error.actor.fetchUser'), {
      type: 'xstate.error.actor.fetchUser',
      error: { name: 'Error', message: 'HTTP 503' },
      actorId: 'fetchUser',
    });
    assert.equal(host.state(), reference.snapshot.value);
    assert.deepEqual(host.context(), reference.snapshot.context);
  });

  test('leaving the state stops the actor: its signal aborts the fetch and no result comes', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest, { answer: () => jsonAnswer(USER) });
    await host.init();
    await host.send({ type: 'LOAD', id: 3 });
    const [fetchOp] = host.ops;
    const cancel = await host.send({ type: 'CANCEL' });
    assert.deepEqual(cancel.effects, [{ type: 'stop', id: 'fetchUser' }]);
    assert.deepEqual(host.outboxes.at(-1).abort, [fetchOp.opId]);
    assert.deepEqual(host.outboxes.at(-1).running, []);
    const late = ok(await guest.completeOp(fetchOp.opId, jsonAnswer(USER)));
    assert.deepEqual(late.events, []);
    await host.settle();
    assert.deepEqual(host.eventTypes(), ['LOAD', 'CANCEL']);
    assert.equal(host.state(), 'idle');
  });
});

describe('xstate 5 callback actors and spawned children', () => {
  test('sendBack, receive and cleanup behave as under XState 5', TIMEOUT, async () => {
    const events = [{ type: 'OPEN' }, { type: 'PING', n: 1 }, { type: 'PING', n: 2 }, { type: 'CLOSE' }];
    globalThis.socketCleanups = 0;
    const reference = await actorRun(async () => new Response(''), events, (s) => s.matches('idle'));
    const cleanups = globalThis.socketCleanups;
    assert.equal(cleanups, 1);

    globalThis.socketCleanups = 0;
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest);
    await host.init();
    for (const event of events) {
      await host.send(event);
      await host.settle();
    }
    assert.equal(host.state(), reference.snapshot.value);
    assert.deepEqual(host.context(), reference.snapshot.context);
    assert.deepEqual(host.context().pongs, [10, 20]);
    assert.equal(globalThis.socketCleanups, cleanups);
  });

  test('a child spawned by an action starts after the commit and stopChild stops it', TIMEOUT, async () => {
    globalThis.socketCleanups = 0;
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest);
    await host.init();
    const spawn = ok(await guest.transition(host.snapshot, { type: 'SPAWN' }));
    assert.deepEqual(spawn.effects, [{ type: 'start', id: 'side', src: 'socket' }]);
    assert.deepEqual(ok(await guest.running()).running, [], 'nothing starts before run_effects');
    ok(await guest.discard(spawn.token));
    assert.deepEqual(ok(await guest.running()).running, []);

    await host.send({ type: 'SPAWN' });
    assert.deepEqual(host.outboxes.at(-1).running, ['side']);
    await host.settle();
    assert.deepEqual(host.eventTypes(), ['SPAWN', 'STARTED']);
    await host.send({ type: 'PING_SIDE', n: 4 });
    await host.settle();
    assert.deepEqual(host.context().pongs, [40]);
    const unspawn = await host.send({ type: 'UNSPAWN' });
    assert.deepEqual(unspawn.effects, [{ type: 'stop', id: 'side' }]);
    assert.deepEqual(host.outboxes.at(-1).running, []);
    assert.equal(globalThis.socketCleanups, 1);
  });

  test('a child machine runs in the guest; its sendParent events and output reach the instance', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('loader5.js'));
    const host = hostFor(guest);
    await host.init();
    await host.send({ type: 'START' });
    await host.settle({ untilMs: 0 });
    await host.send({ type: 'POKE' });
    await host.settle({ untilMs: 0 });
    await host.send({ type: 'POKE' });
    await host.settle();
    assert.equal(host.nowMs, 500);
    assert.deepEqual(host.context().log, ['up', 1, 2]);
    assert.deepEqual(host.context().result, { steps: 2 });
    assert.deepEqual(host.delivered('xstate.done.actor.kid'), {
      type: 'xstate.done.actor.kid',
      output: { steps: 2 },
      actorId: 'kid',
    });
    assert.equal(host.state(), 'idle');
  });

  test('a transient invoke never starts its actor', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine, fromPromise } from 'xstate5';
      export default createMachine({
        initial: 'a',
        states: {
          a: { on: { GO: 't' } },
          t: {
            invoke: { id: 'never', src: fromPromise(() => { globalThis.neverStarted5 = true; return fetch('https://api.example.test/never'); }) },
            always: 'u',
          },
          u: {},
        },
      });
      ${AUTHORIZERS}`));
    const host = hostFor(guest);
    await host.init();
    const go = await host.send({ type: 'GO' });
    await host.settle();
    assert.deepEqual(go.effects, []);
    assert.equal(go.token, null);
    assert.equal(globalThis.neverStarted5, undefined);
    assert.deepEqual(host.requests, []);
  });

  test('custom actions run with XState 5 arguments after the commit', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine, setup } from 'xstate5';
      export default setup({
        actions: { note: ({ context, event }, params) => { globalThis.noted5 = [...(globalThis.noted5 || []), [context.n, event.type, params.tag]]; } },
      }).createMachine({
        initial: 'a',
        context: { n: 1 },
        states: { a: { on: { GO: { target: 'b', actions: { type: 'note', params: { tag: 'go' } } } } }, b: {} },
      });
      ${AUTHORIZERS}`));
    globalThis.noted5 = [];
    const initial = ok(await guest.init());
    const go = ok(await guest.transition(initial.snapshot, { type: 'GO' }));
    assert.deepEqual(go.effects, [{ type: 'exec', action: 'note' }]);
    assert.deepEqual(globalThis.noted5, []);
    ok(await guest.runEffects(go.token));
    assert.deepEqual(globalThis.noted5, [[1, 'GO', 'go']]);
  });
});
