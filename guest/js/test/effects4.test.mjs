// Running XState 4 effects after the commit (ABI version 2), checked against XState 4's own
// interpreter where the behaviour is observable.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { AUTHORIZERS, bundle, bundleSource, guestFor, ok } from './harness.mjs';
import { hostFor, jsonAnswer, withFetch } from './host.mjs';

const require = createRequire(import.meta.url);
const { interpret } = require('xstate');
const { waitFor } = require('xstate/lib/waitFor');
const TIMEOUT = { timeout: 20_000 };
const USER = { id: 7, name: 'Ada' };

/** The loader under XState 4's interpreter; the fetch stub answers like `answer`. */
async function interpreted(respond) {
  const { default: machine } = await import('./machines/loader4.js');
  const events = [];
  const requests = [];
  const service = interpret(machine).onEvent((event) => events.push(event)).start();
  const stub = async (url, init) => {
    requests.push({ url, accept: new Headers(init.headers).get('accept') });
    return respond();
  };
  const state = await withFetch(stub, async () => {
    service.send({ type: 'LOAD', id: 7 });
    return waitFor(service, (s) => s.done || !s.matches('loading'));
  });
  service.stop();
  return { state, events, requests };
}

describe('xstate 4 promise services', () => {
  test('a fetching service ends like it does under the interpreter', TIMEOUT, async () => {
    const reference = await interpreted(
      () => new Response(JSON.stringify(USER), { headers: { 'content-type': 'application/json', etag: 'v1' } }),
    );
    const guest = await guestFor(await bundle('loader4.js'));
    const host = hostFor(guest, { answer: () => ({ ...jsonAnswer(USER), headers: { etag: 'v1' } }) });
    await host.init();
    await host.send({ type: 'LOAD', id: 7 });
    await host.settle();

    assert.deepEqual(host.requests, [
      { method: 'GET', url: 'https://api.example.test/users/7', headers: { accept: 'application/json' }, body: null },
    ]);
    assert.deepEqual(reference.requests, [{ url: 'https://api.example.test/users/7', accept: 'application/json' }]);
    assert.deepEqual(host.eventTypes(), ['LOAD', 'done.invoke.fetchUser']);
    const done = reference.events.find((e) => e.type === 'done.invoke.fetchUser');
    assert.deepEqual(host.delivered('done.invoke.fetchUser'), { type: done.type, data: done.data });
    assert.equal(host.state(), reference.state.value);
    assert.deepEqual(host.context(), reference.state.context);
    assert.deepEqual(host.context().user, { ...USER, etag: 'v1' });
  });

  test('a failing service sends error.platform with the error as name and message', TIMEOUT, async () => {
    const reference = await interpreted(() => new Response('nope', { status: 500 }));
    const guest = await guestFor(await bundle('loader4.js'));
    const host = hostFor(guest, { answer: () => ({ ok: true, status: 500, headers: {}, body: 'nope' }) });
    await host.init();
    await host.send({ type: 'LOAD', id: 7 });
    await host.settle();

    const error = reference.events.find((e) => e.type === 'error.platform.fetchUser');
    assert.deepEqual(host.delivered('error.platform.fetchUser'), {
      type: 'error.platform.fetchUser',
      data: { name: error.data.name, message: error.data.message },
    });
    assert.equal(host.state(), reference.state.value);
    assert.deepEqual(host.context(), reference.state.context);
    assert.deepEqual(host.context().error, { name: 'Error', message: 'HTTP 500' });
  });

  test('a network failure rejects fetch with a TypeError', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('loader4.js'));
    const host = hostFor(guest, { answer: () => ({ ok: false, error: 'connection refused' }) });
    await host.init();
    await host.send({ type: 'LOAD', id: 7 });
    await host.settle();
    assert.equal(host.state(), 'failed');
    assert.deepEqual(host.context().error, { name: 'TypeError', message: 'fetch failed: connection refused' });
  });

  test('a service stopped before it completes sends nothing, as under the interpreter', TIMEOUT, async () => {
    const { default: machine } = await import('./machines/loader4.js');
    let release;
    const events = [];
    const service = interpret(machine).onEvent((event) => events.push(event.type)).start();
    await withFetch(
      () => new Promise((resolve) => {
        release = () => resolve(new Response(JSON.stringify(USER)));
      }),
      async () => {
        service.send({ type: 'LOAD', id: 7 });
        service.send({ type: 'CANCEL' });
        release();
        await new Promise((resolve) => setTimeout(resolve, 20));
      },
    );
    assert.deepEqual(events, ['xstate.init', 'LOAD', 'CANCEL']);
    assert.equal(service.state.value, 'cancelled');
    service.stop();

    const guest = await guestFor(await bundle('loader4.js'));
    const host = hostFor(guest, { answer: () => jsonAnswer(USER) });
    await host.init();
    await host.send({ type: 'LOAD', id: 7 });
    const [fetchOp] = host.ops;
    assert.deepEqual(host.outboxes.at(-1).running, ['fetchUser']);
    const cancel = await host.send({ type: 'CANCEL' });
    assert.deepEqual(cancel.effects, [{ type: 'stop', id: 'fetchUser' }]);
    const stopped = host.outboxes.at(-1);
    assert.deepEqual(stopped.abort, [fetchOp.opId], 'the stopped service loses its fetch');
    assert.deepEqual(stopped.running, []);
    const late = ok(await guest.completeOp(fetchOp.opId, jsonAnswer(USER)));
    assert.deepEqual(late.events, []);
    assert.deepEqual(host.eventTypes(), ['LOAD', 'CANCEL']);
    assert.equal(host.state(), 'cancelled');
  });

  test('stop_child stops a running service and drops its result', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('loader4.js'));
    const host = hostFor(guest, { answer: () => jsonAnswer(USER) });
    await host.init();
    await host.send({ type: 'LOAD', id: 7 });
    const [fetchOp] = host.ops;
    assert.deepEqual(ok(await guest.running()).running, ['fetchUser']);
    const stopped = ok(await guest.stopChild('fetchUser'));
    assert.deepEqual(stopped, { ops: [], abort: [fetchOp.opId], events: [], sends: [], running: [] });
    const late = ok(await guest.completeOp(fetchOp.opId, jsonAnswer(USER)));
    assert.deepEqual(late.events, []);
    assert.deepEqual(ok(await guest.stopChild('fetchUser')).abort, []);
  });
});

describe('xstate 4 callback services', () => {
  test('sendBack, receive and cleanup behave as under the interpreter', TIMEOUT, async () => {
    const { default: machine } = await import('./machines/callback4.js');
    globalThis.callbackCleanups = 0;
    const service = interpret(machine).start();
    for (const event of [{ type: 'OPEN' }, { type: 'PING', n: 1 }, { type: 'PING', n: 2 }, { type: 'CLOSE' }]) {
      service.send(event);
    }
    const reference = { state: service.state.value, context: service.state.context, cleanups: globalThis.callbackCleanups };
    service.stop();

    globalThis.callbackCleanups = 0;
    const guest = await guestFor(await bundle('callback4.js'));
    const host = hostFor(guest);
    await host.init();
    for (const event of [{ type: 'OPEN' }, { type: 'PING', n: 1 }, { type: 'PING', n: 2 }]) {
      await host.send(event);
      await host.settle({ untilMs: host.nowMs });
    }
    assert.deepEqual(host.context().pongs, [10, 20]);
    await host.settle({ untilMs: 2500 });
    assert.equal(host.context().ticks, 2, 'the interval ticked through sleep operations');
    const [interval] = host.ops;
    assert.equal(interval.kind, 'sleep');
    await host.send({ type: 'CLOSE' });
    assert.deepEqual(host.outboxes.at(-1).abort, [interval.opId], 'cleanup cleared the interval');
    assert.equal(host.state(), reference.state);
    assert.deepEqual({ ...host.context(), ticks: 0 }, { ...reference.context, ticks: 0 });
    assert.equal(globalThis.callbackCleanups, reference.cleanups);
    assert.equal(reference.cleanups, 1);
  });
});

describe('effects run after the commit, once', () => {
  test('a fetch held back in assign is released by run_effects, never by discard', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine, spawn } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'idle',
        context: { ref: null, user: null },
        states: {
          idle: {
            on: {
              GO: {
                target: 'waiting',
                actions: assign({ ref: () => spawn(fetch('https://api.example.test/u/1').then((r) => r.json()), 'p1') }),
              },
            },
          },
          waiting: { on: { 'done.invoke.p1': { target: 'got', actions: assign({ user: (_, e) => e.data }) } } },
          got: {},
        },
      });
      ${AUTHORIZERS}`));
    const host = hostFor(guest, { answer: () => jsonAnswer(USER) });
    await host.init();
    const refused = ok(await guest.transition(host.snapshot, { type: 'GO' }));
    assert.deepEqual(refused.effects, [{ type: 'start', id: 'p1', src: 'p1' }]);
    assert.equal(typeof refused.token, 'number');
    // The commit failed (say, a conflicting write): the step's fetch must never go out.
    const discarded = ok(await guest.discard(refused.token));
    assert.deepEqual(discarded.ops, []);
    assert.equal((await guest.runEffects(refused.token)).error.kind, 'bad-input');

    await host.send({ type: 'GO' });
    await host.settle();
    assert.equal(host.requests.length, 1);
    assert.equal(host.requests[0].url, 'https://api.example.test/u/1');
    assert.deepEqual(host.eventTypes(), ['GO', 'done.invoke.p1']);
    assert.equal(host.state(), 'got');
    assert.deepEqual(host.context(), { ref: { id: 'p1' }, user: USER });
  });

  test('a spawned promise stopped before it settles sends nothing, even when its fetch completes', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { actions, assign, createMachine, spawn } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'idle',
        context: { ref: null },
        states: {
          idle: { on: { GO: { target: 'waiting', actions: assign({ ref: () => spawn(fetch('https://api.example.test/slow'), 'p2') }) } } },
          waiting: { on: { DROP: { target: 'dropped', actions: actions.stop('p2') }, 'done.invoke.p2': 'got' } },
          dropped: { on: { 'done.invoke.p2': 'got' } },
          got: {},
        },
      });
      ${AUTHORIZERS}`));
    const host = hostFor(guest, { answer: () => jsonAnswer({}) });
    await host.init();
    await host.send({ type: 'GO' });
    const [fetchOp] = host.ops;
    const drop = await host.send({ type: 'DROP' });
    assert.deepEqual(drop.effects, [{ type: 'stop', id: 'p2' }]);
    // The fetch was made while the step was computed, before the spawn, so it has no owner and
    // is not aborted; its answer still arrives, and the stopped service ignores it.
    assert.deepEqual(host.outboxes.at(-1).abort, []);
    const late = ok(await guest.completeOp(fetchOp.opId, jsonAnswer({})));
    assert.deepEqual(late.events, []);
    assert.equal(host.state(), 'dropped');
  });

  test('a transient invoke never starts its service', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        states: {
          a: { on: { GO: 't' } },
          t: { invoke: { id: 'never', src: 'never' }, always: 'u' },
          u: {},
        },
      }, {
        services: { never: () => { globalThis.neverStarted = true; return fetch('https://api.example.test/never'); } },
      });
      ${AUTHORIZERS}`));
    const host = hostFor(guest);
    await host.init();
    const step = await host.send({ type: 'GO' });
    await host.settle();
    assert.deepEqual(step.effects, []);
    assert.equal(step.token, null);
    assert.equal(globalThis.neverStarted, undefined);
    assert.deepEqual(host.requests, []);
    assert.equal(host.state(), 'u');
  });

  test('a named custom action runs once per run_effects, never on restore', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: { n: 5 },
        states: { a: { entry: 'count', on: { STAY: {}, AGAIN: 'b' } }, b: { on: { BACK: 'a' } } },
      }, {
        actions: {
          count: (context, event, meta) => {
            globalThis.counted = [...(globalThis.counted || []), [context.n, event.type, meta.action.type]];
          },
        },
      });
      ${AUTHORIZERS}`));
    globalThis.counted = [];
    const initial = ok(await guest.init());
    assert.deepEqual(initial.effects, [{ type: 'exec', action: 'count' }]);
    assert.deepEqual(globalThis.counted, [], 'nothing runs in the pure step');
    ok(await guest.runEffects(initial.token));
    assert.deepEqual(globalThis.counted, [[5, 'xstate.init', 'count']]);
    assert.equal((await guest.runEffects(initial.token)).error.kind, 'bad-input');
    const stay = ok(await guest.transition(initial.snapshot, { type: 'STAY' }));
    assert.deepEqual(stay.effects, []);
    assert.equal(stay.token, null);
    const away = ok(await guest.transition(stay.snapshot, { type: 'AGAIN' }));
    const back = ok(await guest.transition(away.snapshot, { type: 'BACK' }));
    ok(await guest.runEffects(back.token));
    assert.deepEqual(globalThis.counted, [[5, 'xstate.init', 'count'], [5, 'BACK', 'count']]);
  });

  test('only the newest tokens are kept; older ones are refused and their fetches dropped', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: { n: 0 },
        states: {
          a: { on: { PING: { actions: assign({ n: () => { fetch('https://api.example.test/ping'); return 1; } }) } } },
        },
      });
      ${AUTHORIZERS}`));
    const initial = ok(await guest.init());
    const tokens = [];
    for (let i = 0; i < 65; i += 1) {
      tokens.push(ok(await guest.transition(initial.snapshot, { type: 'PING' })).token);
    }
    assert.equal((await guest.runEffects(tokens[0])).error.kind, 'bad-input');
    const outbox = ok(await guest.runEffects(tokens[64]));
    assert.equal(outbox.ops.length, 1);
    assert.equal(outbox.ops[0].request.url, 'https://api.example.test/ping');
  });
});
