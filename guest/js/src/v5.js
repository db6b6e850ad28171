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
// of throwing. Actors created during the step (invoked, or spawned inside `assign`) are seen
// through the system's inspection stream, which is how spawns inside `assign` become `start`
// effects at the position where they happened.
import { GuestError, describe, isOutOfMemory } from './errors.js';
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

export function createV5(machine, xstate, mute) {
  const { createActor, fromTransition } = xstate;
  const parent = {
    id: 'statewire.parent',
    sessionId: 'statewire.parent',
    send() {},
    _send() {},
  };

  return {
    init(context) {
      const logic = Object.keys(context).length > 0 ? withContext(machine, context) : machine;
      const self = user(() => mute(() => createActor(logic, { input: context })));
      // A fresh system, so that actors registered by the eager snapshot do not collide.
      self.system = createActor(fromTransition((s) => s, null)).system;
      parent.system = self.system;
      self._parent = parent;
      const collector = collect(self);
      const snapshot = user(() => logic.getInitialSnapshot(collector.scope, context));
      return stepOf(logic, snapshot, collector.effects(parent));
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
        return { ...viewOf(current), snapshot: stored, effects: [] };
      }
      parent.system = self.system;
      self._parent = parent;
      const collector = collect(self);
      const next = user(() => machine.transition(current, event, collector.scope));
      return stepOf(machine, next, collector.effects(parent));
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

function stepOf(logic, snapshot, effects) {
  if (snapshot.status === 'error') {
    // XState catches what the machine throws and ends in its error status.
    if (isOutOfMemory(snapshot.error)) throw snapshot.error;
    throw new GuestError('machine-threw', describe(snapshot.error));
  }
  const persisted = user(() => logic.getPersistedSnapshot(snapshot));
  return { ...viewOf(snapshot), snapshot: persisted, effects };
}

function viewOf(snapshot) {
  return {
    state: snapshot.value,
    context: snapshot.context === undefined ? {} : snapshot.context,
    tags: Array.from(snapshot.tags || []),
    done: snapshot.status === 'done',
  };
}

/** An inert scope around `self` that records actions and newly created actors. */
function collect(self) {
  const actions = [];
  const created = [];
  self.system.inspect({
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
  const effects = (parent) => effectsOf(actions, created, self, parent);
  return { scope, effects };
}

function effectsOf(actions, created, self, parent) {
  const invoked = new Set();
  for (const action of actions) {
    if (action.type === 'xstate.spawnChild' && action.params && action.params.actorRef) {
      invoked.add(action.params.actorRef);
    }
  }
  const spawned = created.filter(({ ref }) => ref._parent === self && !invoked.has(ref));
  const effects = [];
  let next = 0;
  actions.forEach((action, index) => {
    for (; next < spawned.length && spawned[next].at <= index; next += 1) {
      effects.push(startOf(spawned[next].ref));
    }
    const effect = effectOf(action, self, parent);
    if (effect) effects.push(effect);
  });
  for (; next < spawned.length; next += 1) effects.push(startOf(spawned[next].ref));
  return netStarts(effects);
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
        : execEffect(action.type);
  }
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
