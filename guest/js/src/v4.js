// XState 4: the major State Backed machines are written for.
//
// A step is `machine.transition(state, event)` with no interpreter and no exec callback, so no
// action runs; the state's `actions` are turned into effects, and what running them needs (the
// action objects with their `exec`, the activities, the spawned entities) is kept for
// `run_effects` (run4.js). Snapshots are the state's JSON minus the keys that must not or need
// not travel:
// - `actions`: an interpreter restored from a state replays its actions;
// - `history`: the whole previous state;
// - `meta` and `event`: recomputed from `value` and `_event` on restore.
import { GuestError } from './errors.js';
import {
  childRuns,
  childTarget,
  delivery,
  execEffect,
  instanceTarget,
  logEffect,
  netStarts,
  parentTarget,
  spawnInstanceEffect,
} from './effects.js';
import { createV4Runner, mapContext } from './run4.js';
import { recordingSpawns } from './spawns.js';
import { restoring, user } from './user.js';

const NOT_STORED = ['actions', 'history', 'meta', 'event', 'matches', 'toStrings'];
const PERSISTENT_SOURCE = 'statebacked.invoke';

/** `xstate` is the pinned XState 4 module (its `interpret` runs child machines). */
export function createV4(machine, { services, hostOps, xstate }) {
  // XState 4 builds a node's `after` timers (and their entry and exit actions) only when the
  // node's transitions are first read; `initialState` does that for the whole tree, but a step
  // from a restored state does not. Reading the definition, as `smply` does to validate a
  // bundle, builds every node up front.
  void machine.definition;
  const runner = createV4Runner({ machine, services, hostOps, interpret: xstate.interpret });

  function step(compute) {
    const spawned = [];
    const recorder = {
      entity: (ref, entity, options) => {
        if (ref && ref.id !== undefined) spawned.push({ id: String(ref.id), entity, options });
      },
      instance: (effect) => spawned.push({ effect }),
    };
    return recordingSpawns(recorder, () => {
      const state = compute();
      const entries = entriesOf(state, spawned, runner, services);
      return {
        step: { ...viewOf(state), snapshot: stored(state), effects: entries.map((e) => e.effect) },
        runs: entries.filter((e) => e.run !== null).map((e) => e.run),
      };
    });
  }

  return {
    init(context) {
      return step(() =>
        user(() => {
          const own = machine.context;
          const merged = { ...(isObject(own) ? own : {}), ...context };
          return machine.withContext(merged).initialState;
        }),
      );
    },

    transition(snapshot, event) {
      const current = restoring(() => machine.resolveState(snapshot));
      if (current.done) {
        // The interpreter stops at a top-level final state; later events change nothing.
        return { step: { ...viewOf(current), snapshot, effects: [] }, runs: [] };
      }
      return step(() => user(() => machine.transition(current, event)));
    },
  };
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
 * Spawned actors and persistent instances come first (XState 4 spawns while it computes the
 * transition, before any action runs), then the state's actions in order.
 */
function entriesOf(state, spawned, runner, services) {
  const children = childRuns(services);
  const entries = spawned.map((item) =>
    item.effect
      ? { effect: item.effect, run: null }
      : {
          effect: { type: 'start', id: item.id, src: item.id },
          run: { label: `starting ${item.id}`, run: () => runner.entity(item.id, item.entity, item.options || {}) },
        },
  );
  for (const action of state.actions || []) {
    const entry = entryOf(action, state, runner, children);
    if (entry) entries.push(entry);
  }
  const activities = state.activities || {};
  return netStarts(entries, (id) => activities[id] === false).map((entry) =>
    entry.persistent ? { effect: entry.persistent, run: null } : entry,
  );
}

function entryOf(action, state, runner, children) {
  switch (action.type) {
    case 'xstate.send': {
      const effect = delivery(eventOf(action), targetOf(action.to), action.delay, sendIdOf(action));
      return { effect, run: children.delivery(effect) };
    }
    case 'xstate.raise':
      // Undelayed raises were already processed inside the step.
      return typeof action.delay === 'number'
        ? { effect: delivery(eventOf(action), null, action.delay, sendIdOf(action)), run: null }
        : null;
    case 'xstate.cancel': {
      const effect = { type: 'cancel', id: String(action.sendId) };
      return { effect, run: children.cancel(effect) };
    }
    case 'xstate.start':
      return startEntry(action.activity, state, runner);
    case 'xstate.stop': {
      const id = activityIdOf(action.activity);
      if (id === undefined || isPersistent(action.activity)) return null;
      const effect = { type: 'stop', id };
      return { effect, run: children.stop(effect) };
    }
    case 'xstate.log':
      return { effect: logEffect(action.label, action.value), run: null };
    default: {
      if (typeof action.type === 'string' && action.type.startsWith('xstate.')) return null;
      const effect = execEffect(action.type);
      if (typeof action.exec !== 'function') return { effect, run: null };
      return { effect, run: { label: `the action ${effect.action}`, run: () => runner.exec(action, state) } };
    }
  }
}

function startEntry(activity, state, runner) {
  const id = activityIdOf(activity);
  if (id === undefined) return null;
  const effect = { type: 'start', id, src: activitySrcOf(activity, id) };
  if (isPersistent(activity)) {
    // A persistent instance as an invoke source: the host creates it; nothing runs here, and
    // leaving the state does not stop it.
    const data = activity.data ? user(() => mapContext(activity.data, state.context, state._event)) : null;
    return { effect, run: null, persistent: spawnInstanceEffect(id, activity.src, data) };
  }
  const run =
    activity.type === 'xstate.invoke'
      ? { label: `starting ${id}`, run: () => runner.invoke(activity, state) }
      : { label: `starting the activity ${id}`, run: () => runner.activity(activity, state) };
  return { effect, run };
}

function isPersistent(activity) {
  const src = activity && activity.src;
  return Boolean(src && typeof src === 'object' && src.type === PERSISTENT_SOURCE);
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
