// Who records what a pure step spawns: XState 4 entities (through the `spawn` of the guest's
// `npm:xstate`, which calls `globalThis.__statewire_spawned`) and persistent instances (through
// `__statebacked_rt.spawn`). Outside a pure step nothing records, and spawning a persistent
// instance is an error.

let recorder = null;

export const currentRecorder = () => recorder;

/** Runs `step` with `entity(ref, entity, options)` and `instance(effect)` recording. */
export function recordingSpawns(next, step) {
  const previous = recorder;
  const previousGlobal = globalThis.__statewire_spawned;
  recorder = next;
  globalThis.__statewire_spawned = (ref, entity, options) => {
    if (next.entity) next.entity(ref, entity, options);
  };
  try {
    return step();
  } finally {
    recorder = previous;
    globalThis.__statewire_spawned = previousGlobal;
  }
}
