// Runs the built glue (test/.dist, made by `npm test`) in Node, the way the engine runs it:
// the machine bundle is served under `statewire:machine`, and the `npm:` specifiers resolve to
// the built XState modules.
import { build } from 'esbuild';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

process.env.NODE_ENV = 'production';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '.dist');
const scratch = mkdtempSync(join(tmpdir(), 'statewire-guest-test-'));

const served = {
  'npm:xstate': pathToFileURL(join(dist, 'xstate4.mjs')).href,
  'npm:xstate@5': pathToFileURL(join(dist, 'xstate5.mjs')).href,
};
const hooks = `
  const served = ${JSON.stringify(served)};
  export async function resolve(specifier, context, next) {
    if (Object.hasOwn(served, specifier)) return { url: served[specifier], shortCircuit: true };
    return next(specifier, context);
  }`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

await import(pathToFileURL(join(dist, 'glue.js')).href);

/** Authorizers that let every caller read and write, for machines under test. */
export const AUTHORIZERS = 'export const allowRead = () => true; export const allowWrite = () => true;';

export const OP = {
  configure: 0,
  load: 1,
  init: 2,
  transition: 3,
  allowRead: 4,
  allowWrite: 5,
  runEffects: 6,
  completeOp: 7,
  stopChild: 8,
  discard: 9,
  running: 10,
};

/**
 * Bundles a fixture machine. `smply` (the default) externalizes XState the way State Backed's
 * CLI does; `own` bundles XState into the machine.
 */
export async function bundle(fixture, { style = 'smply' } = {}) {
  return bundleWith({ entryPoints: [join(here, 'machines', fixture)] }, style);
}

/** Like `bundle`, for a machine written inline in a test. */
export async function bundleSource(contents, { style = 'smply' } = {}) {
  return bundleWith({ stdin: { contents, resolveDir: join(here, 'machines'), loader: 'js' } }, style);
}

async function bundleWith(input, style) {
  const options = {
    ...input,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    drop: ['debugger'],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'error',
  };
  if (style === 'smply') {
    options.external = ['npm:xstate', 'npm:xstate@5'];
    options.alias = { xstate: 'npm:xstate', xstate5: 'npm:xstate@5' };
  }
  const result = await build(options);
  return result.outputFiles[0].text;
}

let loaded = 0;

/** A fresh guest with `source` loaded; each call returns the parsed ABI output. */
export async function guestFor(source) {
  loaded += 1;
  const file = join(scratch, `machine-${loaded}.mjs`);
  writeFileSync(file, source);
  const guest = globalThis.__statewire_create({
    importModule: (specifier) =>
      specifier === 'statewire:machine' ? import(pathToFileURL(file).href) : import(specifier),
  });
  const call = async (op, input) => {
    const pending = guest.call(op, typeof input === 'string' ? input : JSON.stringify(input));
    if (pending) await pending;
    // The engine runs every pending job before it asks for the answer; so do we.
    await new Promise((resolve) => setImmediate(resolve));
    return JSON.parse(guest.output());
  };
  const loadOutput = await call(OP.load, '');
  return {
    load: loadOutput,
    call,
    init: (context = {}, authContext = {}) =>
      call(OP.init, { machineInstanceName: 'i-1', context, authContext }),
    transition: (snapshot, event) =>
      call(OP.transition, { snapshot: roundTrip(snapshot), event }),
    allowRead: (args) => call(OP.allowRead, args),
    allowWrite: (args) => call(OP.allowWrite, args),
    runEffects: (token) => call(OP.runEffects, { token }),
    completeOp: (opId, result) => call(OP.completeOp, { opId, result }),
    stopChild: (id) => call(OP.stopChild, { id }),
    discard: (token) => call(OP.discard, { token }),
    running: () => call(OP.running, {}),
  };
}

/** What the host does with a snapshot: store its JSON text, hand it back later. */
export function roundTrip(value) {
  return JSON.parse(JSON.stringify(value));
}

/** Unwraps `{ok}`, failing with the error otherwise. */
export function ok(output) {
  if (!('ok' in output)) throw new Error(`expected ok, got ${JSON.stringify(output)}`);
  return output.ok;
}

/** Steps through `events` from `init`, returning every Step. */
export async function run(guest, events, context = {}) {
  const steps = [ok(await guest.init(context))];
  for (const event of events) {
    steps.push(ok(await guest.transition(steps.at(-1).snapshot, event)));
  }
  return steps;
}
