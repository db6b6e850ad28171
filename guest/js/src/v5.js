// XState 5.
//
// Each step builds a fresh, never-started actor to carry the actor scope, hands XState an inert
// scope whose action executor only collects, and persists with `getPersistedSnapshot`:
// - transition: the actor is created from the stored snapshot (that is the documented
//   `restoreSnapshot`, run by XState itself); then `machine.transition(snapshot, event, scope)`;
// - init: the actor is created with the input (its eager initial snapshot is computed with logs
//   muted and thrown away, as XState's own `initialTransition` does), then gets a fresh system,
//   then `machine.getInitialSnapshot(scope, input)`.
// This is what XState's `transition`/`initialTransition` do, minus their eager initial
// snapshot on every transition. `test/v5-official.test.mjs` checks both give the same result.
//
// The actor has a stand-in parent, so `sendParent` resolves (to a `send` to the parent) instead
// of throwing; code that runs after the commit and sends to that parent reaches the outbox's
// `sends`. Actors created during the step (invoked, or spawned inside `assign`) are seen
// through the system's inspection stream, which is how spawns inside `assign` become `start`
// effects at the position where they happened. The step's actor and its children stay in the
// token for `run_effects` (run5.js).
import { GuestError, describe, isOutOfMemory } from './errors.js';
import {
  childRuns,
  childTarget,
  delivery,
  execEffect,
  instanceTarget,
  logEffect,
  netStarts,
  parentTarget,
} from './effects.js';
import { createV5Runner } from './run5.js';
import { recordingSpawns } from './spawns.js';
import { restoring, user } from './user.js';

export function createV5(machine, xstate, { mute, services, hostOps }) {
  const { createActor, fromTransition } = xstate;
  const runner = createV5Runner({ services, hostOps });
  const toParent = (event) => {
    if (hostOps.phase === 'effects') services.send(parentTarget(), event);
  };
  const parent = {
    id: 'statewire.parent',
    sessionId: 'statewire.parent',
    send: toParent,
    _send: toParent,
  };
  const shared = { parent, runner, services };

  return {
    init(given) {
      const logic = Object.keys(given).length > 0 ? withContext(machine, given) : machine;
      const self = user(() => mute(() => createActor(logic, { input: given })));
      // A fresh system, so that actors registered by the eager snapshot do not collide.
      self.system = createActor(fromTransition((s) => s, null)).system;
      parent.system = self.system;
      self._parent = parent;
      const collector = collect(self);
      const snapshot = collector.record(() => user(() => logic.getInitialSnapshot(collector.scope, given)));
      return stepOf(logic, snapshot, collector.entries(shared));
    },

    transition(stored, event) {
      const self = restoring(() => createActor(machine, { snapshot: stored }));
      const current = self.getSnapshot();
      if (current.status === 'error') {
        if (isOutOfMemory(current.error)) throw current.error;
        throw new GuestError('bad-input', `the snapshot cannot be restored: ${describe(current.error)}`);
      }
      if (current.status !== 'active') {
        // A done or stopped actor takes no more events.
        return { step: { ...viewOf(current), snapshot: stored, effects: [] }, runs: [] };
      }
      parent.system = self.system;
      self._parent = parent;
      const collector = collect(self);
      const next = collector.record(() => user(() => machine.transition(current, event, collector.scope)));
      return stepOf(machine, next, collector.entries(shared));
    },
  };
}

/** The caller's context shallow-merged over the machine's own (object or factory). */
function withContext(machine, given) {
  const own = machine.config.context;
  const config = {
    ...machine.config,
    context: (args) => ({ ...(typeof own === 'function' ? own(args) : own), ...given }),
  };
  return new machine.constructor(config, machine.implementations);
}

function stepOf(logic, snapshot, entries) {
  if (snapshot.status === 'error') {
    // XState catches what the machine throws and ends in its error status.
    if (isOutOfMemory(snapshot.error)) throw snapshot.error;
    throw new GuestError('machine-threw', describe(snapshot.error));
  }
  const persisted = user(() => logic.getPersistedSnapshot(snapshot));
  return {
    step: { ...viewOf(snapshot), snapshot: persisted, effects: entries.map((e) => e.effect) },
    runs: entries.filter((e) => e.run !== null).map((e) => e.run),
  };
}

function viewOf(snapshot) {
  return {
    state: snapshot.value,
    context: snapshot.context === undefined ? {} : snapshot.context,
    tags: Array.from(snapshot.tags || []),
    done: snapshot.status === 'done',
  };
}

/**
 * An inert scope around `self` that records actions, newly created actors and persistent
 * instances spawned through `__statebacked_rt`, each with its position among the actions.
 */
function collect(self) {
  const actions = [];
  const created = [];
  // The system outlives the step when children run; only the step's own actors are wanted.
  const inspection = self.system.inspect({
    next(event) {
      if (event.type === '@xstate.actor') created.push({ ref: event.actorRef, at: actions.length });
    },
  });
  const scope = {
    self,
    id: self.id,
    sessionId: self.sessionId,
    logger: () => {},
    defer: () => {},
    system: self.system,
    stopChild: () => {},
    emit: () => {},
    actionExecutor: (action) => {
      actions.push(action);
    },
  };
  const record = (step) =>
    recordingSpawns({ instance: (effect) => created.push({ instance: effect, at: actions.length }) }, step);
  const entries = (shared) => {
    inspection.unsubscribe();
    return entriesOf(actions, created, self, shared);
  };
  return { scope, record, entries };
}

function entriesOf(actions, created, self, { parent, runner, services }) {
  const invoked = new Set();
  for (const action of actions) {
    if (action.type === 'xstate.spawnChild' && action.params && action.params.actorRef) {
      invoked.add(action.params.actorRef);
    }
  }
  const spawned = created.filter(({ ref, instance }) => instance || (ref._parent === self && !invoked.has(ref)));
  const startEntry = (ref) => ({
    effect: startOf(ref),
    run: { label: `starting ${ref.id}`, run: () => runner.start(ref, self) },
  });
  const spawnedEntry = (item) => (item.instance ? { effect: item.instance, run: null } : startEntry(item.ref));
  const children = childRuns(services);
  const entries = [];
  let next = 0;
  actions.forEach((action, index) => {
    for (; next < spawned.length && spawned[next].at <= index; next += 1) {
      entries.push(spawnedEntry(spawned[next]));
    }
    const entry = entryOf(action, self, parent, { runner, children, startEntry });
    if (entry) entries.push(entry);
  });
  for (; next < spawned.length; next += 1) entries.push(spawnedEntry(spawned[next]));
  return netStarts(entries);
}

function entryOf(action, self, parent, { runner, children, startEntry }) {
  const effect = effectOf(action, self, parent);
  if (!effect) return null;
  switch (effect.type) {
    case 'start':
      return startEntry(action.params.actorRef);
    case 'stop':
      return { effect, run: children.stop(effect) };
    case 'cancel':
      return { effect, run: children.cancel(effect) };
    case 'send':
    case 'schedule':
      return { effect, run: children.delivery(effect) };
    case 'exec':
      if (typeof action.exec !== 'function') return { effect, run: null };
      return { effect, run: { label: `the action ${effect.action}`, run: () => runner.exec(action) } };
    default:
      return { effect, run: null };
  }
}

function effectOf(action, self, parent) {
  const params = action.params || {};
  switch (action.type) {
    case 'xstate.raise':
      // An undelayed raise is listed although XState already processed it in this step.
      return typeof params.delay === 'number'
        ? delivery(params.event, null, params.delay, params.id ?? anonymousId())
        : null;
    case 'xstate.sendTo':
      return delivery(params.event, targetOf(params.to, self, parent), params.delay, params.id ?? anonymousId());
    case 'xstate.cancel':
      return { type: 'cancel', id: String(params.sendId) };
    case 'xstate.spawnChild':
      return params.actorRef ? startOf(params.actorRef) : null;
    case 'xstate.stopChild': {
      const ref = action.params;
      if (ref === undefined || ref === null) return null;
      return { type: 'stop', id: String(typeof ref === 'string' ? ref : ref.id) };
    }
    case 'xstate.log':
      return logEffect(params.label, params.value);
    default:
      // Other built-ins (`emit`, …) have nothing for the host to do.
      return typeof action.type === 'string' && action.type.startsWith('xstate.')
        ? null
        : execEffect(inlineName(action));
  }
}

/**
 * XState 5 types a nameless inline action `(anonymous)`; like XState 4 does, name it by its
 * source text instead, so the host can tell such actions apart.
 */
function inlineName(action) {
  if (action.type === '(anonymous)' && typeof action.exec === 'function') {
    return action.exec.name || String(action.exec);
  }
  return action.type;
}

function startOf(ref) {
  const id = String(ref.id);
  return { type: 'start', id, src: typeof ref.src === 'string' ? ref.src : id };
}

function targetOf(to, self, parent) {
  if (to === self || to === undefined || to === null) return null;
  if (to === parent) return parentTarget();
  if (typeof to === 'string') return childTarget(to);
  const instance = instanceTarget(to);
  if (instance) return instance;
  if (typeof to === 'object' && to.id !== undefined) return childTarget(to.id);
  throw new GuestError('machine-threw', `a send action names a target that is not an actor: ${String(to)}`);
}

/** XState 5 gives an id-less delayed event a random id; so do we. */
function anonymousId() {
  return Math.random().toString(36).slice(2);
}
