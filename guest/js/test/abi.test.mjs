// The ABI surface of the glue: loading, input checks, error kinds, authorizers and logs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AUTHORIZERS, OP, bundle, bundleSource, guestFor, ok, run } from './harness.mjs';

const TIMEOUT = { timeout: 20_000 };

async function loadError(source) {
  const guest = await guestFor(source);
  assert.ok('error' in guest.load, `expected an error, got ${JSON.stringify(guest.load)}`);
  return guest.load.error;
}

describe('loading a bundle', () => {
  test('a syntax error is an invalid bundle', TIMEOUT, async () => {
    const error = await loadError(`export default {;\n${AUTHORIZERS}`);
    assert.equal(error.kind, 'invalid-bundle');
    assert.match(error.message, /SyntaxError/);
  });

  test('a bundle without a default export is invalid', TIMEOUT, async () => {
    const error = await loadError(AUTHORIZERS);
    assert.equal(error.kind, 'invalid-bundle');
    assert.match(error.message, /default export/);
  });

  test('a default export that is not a machine is invalid', TIMEOUT, async () => {
    const error = await loadError(`export default { states: {} };\n${AUTHORIZERS}`);
    assert.equal(error.kind, 'invalid-bundle');
  });

  test('authorizers must be exported functions', TIMEOUT, async () => {
    const machine = await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = () => true;
      export const allowWrite = true;`);
    const error = await loadError(machine);
    assert.equal(error.kind, 'invalid-bundle');
    assert.match(error.message, /allowWrite/);
  });

  test('a throw while the bundle evaluates is an invalid bundle', TIMEOUT, async () => {
    const error = await loadError(`throw new Error('top level');\nexport default 1;\n${AUTHORIZERS}`);
    assert.equal(error.kind, 'invalid-bundle');
    assert.match(error.message, /top level/);
  });

  test('console output while loading is returned with the load result', TIMEOUT, async () => {
    const source = await bundleSource(`
      import { createMachine } from 'xstate';
      console.warn('loading', { v: 1 });
      export default createMachine({ initial: 'a', states: { a: {} } });
      ${AUTHORIZERS}`);
    const guest = await guestFor(source);
    assert.deepEqual(ok(guest.load).logs, [{ level: 'warn', message: 'loading {"v":1}' }]);
  });

  test('load can only happen once', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    const again = await guest.call(OP.load, '');
    assert.equal(again.error.kind, 'bad-input');
  });
});

describe('calls on a loaded machine', () => {
  test('configure accepts heap and stack limits and rejects nonsense', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    assert.deepEqual(await guest.call(OP.configure, { heapLimitBytes: 64 << 20 }), { ok: {} });
    assert.deepEqual(await guest.call(OP.configure, { stackLimitBytes: 64 << 10 }), { ok: {} });
    for (const settings of [{ heapLimitBytes: -1 }, { stackLimitBytes: 1.5 }, { heapLimitBytes: '1' }]) {
      assert.equal((await guest.call(OP.configure, settings)).error.kind, 'bad-input');
    }
  });

  test('an unknown operation is unsupported-op', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    assert.equal((await guest.call(42, '{}')).error.kind, 'unsupported-op');
  });

  test('input that is not as specified is bad-input', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    const [initial] = await run(guest, []);
    const kinds = [
      await guest.call(OP.init, 'not json'),
      await guest.call(OP.init, { context: [1] }),
      await guest.transition(initial.snapshot, { kind: 'TOGGLE' }),
      await guest.transition(initial.snapshot, 'TOGGLE'),
      await guest.call(OP.transition, { event: { type: 'TOGGLE' } }),
      await guest.call(OP.allowRead, '[]'),
    ].map((output) => output.error.kind);
    assert.deepEqual(kinds, Array(6).fill('bad-input'));
  });

  test('a snapshot that does not fit the machine is bad-input', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    const output = await guest.transition({ value: 'nowhere' }, { type: 'TOGGLE' });
    assert.equal(output.error.kind, 'bad-input');
    const v5 = await guestFor(await bundle('toggle5.js'));
    const v5Output = await v5.transition({ status: 'active', value: 'nowhere' }, { type: 'TOGGLE' });
    assert.equal(v5Output.error.kind, 'bad-input');
  });

  test('a throwing guard is machine-threw', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('order4.js'));
    const [initial] = await run(guest, []);
    const output = await guest.transition(initial.snapshot, { type: 'BOOM' });
    assert.equal(output.error.kind, 'machine-threw');
    assert.match(output.error.message, /guard exploded/);
  });

  test('a context that is not JSON fails the step as machine-threw', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine } from 'xstate';
      export default createMachine({
        predictableActionArguments: true,
        initial: 'a',
        context: {},
        states: { a: { on: { BIG: { actions: assign({ n: () => 10n }) } } } },
      });
      ${AUTHORIZERS}`));
    const [initial] = await run(guest, []);
    const output = await guest.transition(initial.snapshot, { type: 'BIG' });
    assert.equal(output.error.kind, 'machine-threw');
    assert.match(output.error.message, /not JSON/);
  });
});

describe('error kinds', () => {
  test('a thrown null is taken for an exhausted heap, as QuickJS throws null then', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = () => { throw null; };
      export const allowWrite = () => { throw new InternalErrorLike(); };
      class InternalErrorLike extends Error {
        constructor() { super('out of memory'); this.name = 'InternalError'; }
      }`));
    assert.equal((await guest.allowRead({})).error.kind, 'out-of-memory');
    assert.equal((await guest.allowWrite({})).error.kind, 'out-of-memory');
  });

  test('a machine in xstate 5 error status is machine-threw', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { assign, createMachine } from 'xstate5';
      export default createMachine({
        initial: 'a',
        states: { a: { on: { BAD: { actions: assign(() => { throw new Error('assign exploded'); }) } } } },
      });
      ${AUTHORIZERS}`));
    const [initial] = await run(guest, []);
    const output = await guest.transition(initial.snapshot, { type: 'BAD' });
    assert.equal(output.error.kind, 'machine-threw');
    assert.match(output.error.message, /assign exploded/);
  });
});

describe('authorizers', () => {
  const read = (sub) => ({ machineInstanceName: 'i-1', state: 'off', context: {}, authContext: { sub } });
  const write = (sub, event = { type: 'TOGGLE' }) => ({
    type: 'event',
    machineInstanceName: 'i-1',
    state: 'off',
    context: {},
    event,
    authContext: { sub },
  });

  test('allowRead and allowWrite answers come back as booleans', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    assert.deepEqual(await guest.allowRead(read('reader')), { ok: { allowed: true } });
    assert.deepEqual(await guest.allowRead(read('stranger')), { ok: { allowed: false } });
    assert.deepEqual(await guest.allowWrite(write('writer')), { ok: { allowed: true } });
    assert.deepEqual(await guest.allowWrite(write('writer', { type: 'FORBIDDEN' })), {
      ok: { allowed: false },
    });
    const init = { type: 'initialization', machineInstanceName: 'i-1', context: {}, authContext: { sub: 'writer' } };
    assert.deepEqual(await guest.allowWrite(init), { ok: { allowed: true } });
  });

  test('a throwing authorizer is machine-threw', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle4.js'));
    const output = await guest.allowWrite(write('thrower'));
    assert.equal(output.error.kind, 'machine-threw');
    assert.match(output.error.message, /authorizer exploded/);
  });

  test('an async authorizer is awaited, not taken as truthy', TIMEOUT, async () => {
    const guest = await guestFor(await bundle('toggle5.js'));
    assert.deepEqual(await guest.allowWrite(write('writer')), { ok: { allowed: true } });
    assert.deepEqual(await guest.allowWrite(write('stranger')), { ok: { allowed: false } });
  });

  test('truthy and falsy answers are coerced', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = () => 'yes';
      export const allowWrite = () => 0;`));
    assert.deepEqual(await guest.allowRead(read('x')), { ok: { allowed: true } });
    assert.deepEqual(await guest.allowWrite(write('x')), { ok: { allowed: false } });
  });
});

describe('logs', () => {
  test('a machine that logs without end is cut off with a count', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = () => { for (let i = 0; i < 5000; i++) console.log('line', i); return true; };
      export const allowWrite = () => true;`));
    const output = ok(await guest.allowRead({ authContext: {} }));
    assert.equal(output.logs.length, 1001);
    assert.deepEqual(output.logs.at(-1), { level: 'warn', message: '4000 more log entries were dropped' });
  });

  test('logs of a failing call come back with the error', TIMEOUT, async () => {
    const guest = await guestFor(await bundleSource(`
      import { createMachine } from 'xstate';
      export default createMachine({ initial: 'a', states: { a: {} } });
      export const allowRead = () => { console.error('about to fail'); throw new TypeError('no'); };
      export const allowWrite = () => true;`));
    const output = await guest.allowRead({ authContext: {} });
    assert.deepEqual(output.error, {
      kind: 'machine-threw',
      message: 'TypeError: no',
      logs: [{ level: 'error', message: 'about to fail' }],
    });
  });
});
