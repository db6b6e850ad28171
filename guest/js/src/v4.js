// XState 4: the major State Backed machines are written for.
//
// A step is `machine.transition(state, event)` with no interpreter and no exec callback, so no
// action runs; the state's `actions` are turned into effects. Snapshots are the state's JSON
// minus the keys that must not or need not travel:
// - `actions`: an interpreter restored from a state replays its actions;
// - `history`: the whole previous state;
// - `meta` and `event`: recomputed from `value` and `_event` on restore.
import { GuestError } from './errors.js';
import {
  childTarget,
  delivery,
  execEffect,
  instanceTarget,
  logEffect,
  netStarts,
  parentTarget,
} from './effects.js';
import { restoring, user } from './user.js';

const NOT_STORED = ['actions', 'history', 'meta', 'event', 'matches', 'toStrings'];

export function createV4(machine) {
  // XState 4 builds a node's `after` timers (and their entry and exit actions) only when the
  // node's transitions are first read; `initialState` does that for the whole tree, but a step
  // from a restored state does not. Reading the definition, as `smply` does to validate a
  // bundle, builds every node up front.
  void machine.definition;
  return {
    init(context) {
      return recordingSpawns((spawned) => {
        const state = user(() => {
          const own = machine.context;
          const merged = { ...(isObject(own) ? own : {}), ...context };
          return machine.withContext(merged).initialState;
        });
        return stepOf(state, spawned);
      });
    },

    transition(snapshot, event) {
      const current = restoring(() => machine.resolveState(snapshot));
      if (current.done) {
        // The interpreter stops at a top-level final state; later events change nothing.
        return { ...viewOf(current), snapshot, effects: [] };
      }
      return recordingSpawns((spawned) => {
        const next = user(() => machine.transition(current, event));
        return stepOf(next, spawned);
      });
    },
  };
}

function stepOf(state, spawned) {
  return { ...viewOf(state), snapshot: stored(state), effects: effectsOf(state, spawned) };
}

function viewOf(state) {
  return {
    state: state.value,
    context: state.context === undefined ? {} : state.context,
    tags: Array.from(state.tags || []),
    done: Boolean(state.done),
  };
}

function stored(state) {
  const json = state.toJSON();
  for (const key of NOT_STORED) delete json[key];
  return json;
}

/**
 * Runs one step with `spawn` (from the guest's `npm:xstate`) reporting what it spawns. XState
 * 4 spawns while it computes the transition, before any action runs, so spawned actors come
 * first in the effect list.
 */
function recordingSpawns(step) {
  const spawned = [];
  const previous = globalThis.__statewire_spawned;
  globalThis.__statewire_spawned = (ref) => {
    if (ref && ref.id !== undefined) spawned.push(String(ref.id));
  };
  try {
    return step(spawned);
  } finally {
    globalThis.__statewire_spawned = previous;
  }
}

function effectsOf(state, spawned) {
  const effects = spawned.map((id) => ({ type: 'start', id, src: id }));
  for (const action of state.actions || []) {
    const effect = effectOf(action);
    if (effect) effects.push(effect);
  }
  const activities = state.activities || {};
  return netStarts(effects, (id) => activities[id] === false);
}

function effectOf(action) {
  switch (action.type) {
    case 'xstate.send':
      return delivery(eventOf(action), targetOf(action.to), action.delay, sendIdOf(action));
    case 'xstate.raise':
      // Undelayed raises were already processed inside the step.
      return typeof action.delay === 'number'
        ? delivery(eventOf(action), null, action.delay, sendIdOf(action))
        : null;
    case 'xstate.cancel':
      return { type: 'cancel', id: String(action.sendId) };
    case 'xstate.start': {
      const id = activityIdOf(action.activity);
      return id === undefined ? null : { type: 'start', id, src: activitySrcOf(action.activity, id) };
    }
    case 'xstate.stop': {
      const id = activityIdOf(action.activity);
      return id === undefined ? null : { type: 'stop', id };
    }
    case 'xstate.log':
      return logEffect(action.label, action.value);
    default:
      return typeof action.type === 'string' && action.type.startsWith('xstate.')
        ? null
        : execEffect(action.type);
  }
}

function eventOf(action) {
  return action._event && action._event.data !== undefined ? action._event.data : action.event;
}

/** XState 4 names an id-less send after its event type, and so do we for raises. */
function sendIdOf(action) {
  if (action.id !== undefined && action.id !== null && action.id !== '') return action.id;
  const event = eventOf(action);
  return event && typeof event === 'object' ? event.type : event;
}

function targetOf(to) {
  if (to === undefined || to === null) return null;
  if (typeof to === 'string') {
    if (to === '#_parent') return parentTarget();
    if (to === '#_internal') return null;
    return childTarget(to.startsWith('#_') ? to.slice(2) : to);
  }
  const instance = instanceTarget(to);
  if (instance) return instance;
  if (typeof to === 'object' && to.id !== undefined) return childTarget(to.id);
  throw new GuestError('machine-threw', `a send action names a target that is not an actor: ${String(to)}`);
}

function activityIdOf(activity) {
  if (!activity) return undefined;
  const id = activity.id !== undefined ? activity.id : activity.type;
  return id === undefined ? undefined : String(id);
}

function activitySrcOf(activity, id) {
  const src = activity.src;
  if (typeof src === 'string') return src;
  if (src && typeof src.type === 'string') return src.type;
  return id;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
