// Entry of the glue script the engine evaluates once, before any call.
//
// It defines `globalThis.__statewire` (the guest the engine calls) and
// `globalThis.__statewire_create` (to build more guests, which the Node tests do). The engine
// defines `globalThis.__statewire_host` first, with `setHeapLimit(bytes)`,
// `setStackLimit(bytes)` and `randomBytes(n)`.
//
// It also puts the web platform globals in place (web/install.js), a `Math.random` that copies
// of a loaded guest do not share (web/math-random.js), and State Backed's `__statebacked_rt`
// (statebacked-rt.js).
import { createGuest } from './guest.js';
import { activeOps } from './host-ops.js';
import { createStatebackedRt } from './statebacked-rt.js';
import { installWebGlobals } from './web/install.js';
import { createMathRandom } from './web/math-random.js';

const host = globalThis.__statewire_host || {};

installWebGlobals(globalThis, {
  current: () => {
    const ops = activeOps();
    return ops ? ops.web : null;
  },
  randomBytes: typeof host.randomBytes === 'function' ? (n) => host.randomBytes(n) : undefined,
});

if (typeof host.randomBytes === 'function') {
  Math.random = createMathRandom((n) => host.randomBytes(n));
}

const rt = createStatebackedRt();
for (const name of ['__statebacked_rt', '__statebaked_rt']) {
  Object.defineProperty(globalThis, name, { value: rt, writable: true, configurable: true });
}

globalThis.__statewire_create = createGuest;
globalThis.__statewire = createGuest({
  importModule: (specifier) => import(specifier),
  host,
});
