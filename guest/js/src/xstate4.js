// The module served for `npm:xstate` (and `xstate`, `npm:xstate@4`): the pinned XState 4 with
// one change. Outside an interpreter, XState 4's `spawn` hands back a deferred reference and
// keeps nothing of the spawned entity, so a pure transition would lose it without a trace. Our
// `spawn` still returns what XState returns, and also hands the entity to the glue, which
// reports it as a `start` effect and runs it after the step is committed. (XState's own
// `spawn` export is a getter-only binding, so it cannot be wrapped in place: this module is a
// copy of XState's exports with its own `spawn`.)
import { spawn as xstateSpawn } from 'xstate';

export * from 'xstate';

export function spawn(entity, nameOrOptions) {
  const ref = xstateSpawn(entity, nameOrOptions);
  const record = globalThis.__statewire_spawned;
  if (typeof record === 'function') {
    const options = nameOrOptions !== null && typeof nameOrOptions === 'object' ? nameOrOptions : {};
    record(ref, entity, options);
  }
  return ref;
}
