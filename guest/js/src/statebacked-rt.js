// `globalThis.__statebacked_rt`, the hook State Backed's `@statebacked/machine` calls to spawn
// children (its published 0.6.0 looks for `__statebaked_rt`; both names are the same object):
// - `spawn({machineName, machineInstanceName?, machineVersionId?}, {name?, context?})` — a
//   persistent instance (`spawnPersistentInstance`). Inside `assign` of a pure step it records
//   a `spawn-instance` effect for the host and returns the reference the library itself builds
//   when no runtime is there: `{...descriptor, type: "statebacked.instance", id,
//   machineInstanceName}`, with a random UUID for a missing `name` or `machineInstanceName`.
// - `spawn(entity, nameOrOptions)` with a promise, callback, machine or observable — an
//   ephemeral child (`spawnEphemeralInstance`), spawned with the guest's XState 4 `spawn`, so
//   it works for bundles that carry their own XState. XState 4 machines only, inside `assign`.
import { currentRecorder } from './spawns.js';
import { spawnInstanceEffect } from './effects.js';
import { toJson } from './json.js';

let xstate4Spawn = null;

/** Called when a bundle is loaded as an XState 4 machine, with the guest's `npm:xstate`. */
export function useXState4(module) {
  xstate4Spawn = module.spawn;
}

export function createStatebackedRt() {
  return {
    spawn(target, options) {
      const recorder = currentRecorder();
      if (isInstanceDescriptor(target)) {
        if (!recorder || !recorder.instance) {
          throw new Error('spawnPersistentInstance must be called inside assign');
        }
        const settings = options !== null && typeof options === 'object' ? options : {};
        const named = settings.name !== undefined && settings.name !== null;
        const id = named ? String(settings.name) : crypto.randomUUID();
        const machineInstanceName =
          typeof target.machineInstanceName === 'string' ? target.machineInstanceName : crypto.randomUUID();
        const context = settings.context === undefined ? null : toJson(settings.context);
        const ref = { ...target, type: 'statebacked.instance', id, machineInstanceName };
        recorder.instance(spawnInstanceEffect(id, ref, context));
        return ref;
      }
      if (!recorder || !recorder.entity || !xstate4Spawn) {
        throw new TypeError('spawnEphemeralInstance must be called inside assign of an XState 4 machine');
      }
      return xstate4Spawn(target, options);
    },
  };
}

function isInstanceDescriptor(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.machineName === 'string' &&
    value.__xstatenode !== true &&
    typeof value.then !== 'function' &&
    typeof value.subscribe !== 'function' &&
    typeof value.getInitialSnapshot !== 'function'
  );
}
