// Entry of the glue script the engine evaluates once, before any call.
//
// It defines `globalThis.__statewire` (the guest the engine calls) and
// `globalThis.__statewire_create` (to build more guests, which the Node tests do). The engine may
// define `globalThis.__statewire_host` first, with `setHeapLimit(bytes)`.
//
// XState and the timers it refers to: the pure steps never arm a timer, but XState reads
// `setTimeout`/`clearTimeout` when it builds its defaults, so stand-ins exist where the engine
// has none. They never fire.
import { createGuest } from './guest.js';

if (typeof globalThis.setTimeout !== 'function') {
  let nextTimer = 1;
  globalThis.setTimeout = () => nextTimer++;
  globalThis.clearTimeout = () => {};
  globalThis.setInterval = () => nextTimer++;
  globalThis.clearInterval = () => {};
}

globalThis.__statewire_create = createGuest;
globalThis.__statewire = createGuest({
  importModule: (specifier) => import(specifier),
  host: globalThis.__statewire_host || {},
});
