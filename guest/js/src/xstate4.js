// The module served for `npm:xstate` (and `xstate`, `npm:xstate@4`): the pinned XState 4 with
// one change. Outside an interpreter, XState 4's `spawn` hands back a deferred reference and
// keeps nothing of the spawned entity, so a pure transition would lose it without a trace. Our
// `spawn` still returns what XState returns, and also tells the glue which id was spawned, so
// the step can report it as a `start` effect.
import { spawn as xstateSpawn } from 'xstate';

export * from 'xstate';

export function spawn(entity, nameOrOptions) {
  const ref = xstateSpawn(entity, nameOrOptions);
  const record = globalThis.__statewire_spawned;
  if (typeof record === 'function') {
    record(ref, entity);
  }
  return ref;
}
