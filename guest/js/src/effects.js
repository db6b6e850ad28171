// Building blocks of the normalized effect list (docs/machine-abi.md, "Effects").
//
// Both XState majors are reduced to the same few effect shapes. The rules, applied by the
// per-major adapters in v4.js and v5.js:
// - a send or raise with a numeric delay becomes `schedule`; `cancel` becomes `cancel`;
// - a send without delay becomes `enqueue` (to self) or `send` (to anyone else);
// - starting an invoked or spawned actor becomes `start`, stopping one `stop`, and a start that
//   a later `stop` in the same list undoes is dropped together with that stop;
// - `log` becomes `log`; any other action the machine defines becomes `exec`;
// - a persistent instance spawned through `__statebacked_rt` becomes `spawn-instance`;
// - the order is the order XState gives.
//
// Adapters build entries `{effect, run}`: `effect` is the JSON the Step lists, and `run`, when
// not null, is `{label, run()}`, what `run_effects` does for it after the commit.

/** Longest action name reported in an `exec` effect (inline functions are named by their source). */
const MAX_ACTION_NAME_CHARS = 200;

export const parentTarget = () => ({ kind: 'parent' });
export const childTarget = (id) => ({ kind: 'child', id: String(id) });

/** A State Backed persistent-instance reference, as `@statebacked/machine` builds it. */
export function instanceTarget(ref) {
  if (ref !== null && typeof ref === 'object' && ref.type === 'statebacked.instance') {
    return {
      kind: 'instance',
      machineName: String(ref.machineName),
      machineInstanceName: String(ref.machineInstanceName),
    };
  }
  return null;
}

/** The `spawn-instance` effect (docs/machine-abi.md) for a persistent instance descriptor. */
export function spawnInstanceEffect(id, descriptor, context) {
  return {
    type: 'spawn-instance',
    id: String(id),
    machineName: String(descriptor.machineName),
    machineInstanceName: String(descriptor.machineInstanceName),
    machineVersionId: typeof descriptor.machineVersionId === 'string' ? descriptor.machineVersionId : null,
    context: context !== null && typeof context === 'object' && !Array.isArray(context) ? context : null,
  };
}

/** `schedule`, `enqueue` or `send` for one event, depending on delay and target. */
export function delivery(event, to, delay, id) {
  if (typeof delay === 'number' && Number.isFinite(delay)) {
    return { type: 'schedule', id: String(id), delay, event: jsonEvent(event), to };
  }
  if (to === null) {
    return { type: 'enqueue', event: jsonEvent(event) };
  }
  return { type: 'send', to, event: jsonEvent(event) };
}

export function logEffect(label, value) {
  return {
    type: 'log',
    label: label === undefined || label === null ? null : String(label),
    value: jsonValue(value),
  };
}

export function execEffect(name) {
  const action = typeof name === 'string' && name ? name : '(anonymous)';
  return { type: 'exec', action: action.slice(0, MAX_ACTION_NAME_CHARS) };
}

/**
 * Drops every `start` that a later `stop` of the same id undoes, together with that `stop`.
 * `entries` are `{effect, …}`; `neverStarted(id)` lets an adapter drop starts XState itself
 * says did not happen.
 */
export function netStarts(entries, neverStarted = () => false) {
  const dropped = new Set();
  entries.forEach(({ effect }, index) => {
    if (effect.type !== 'start') return;
    if (neverStarted(effect.id)) {
      dropped.add(index);
    }
    for (let later = index + 1; later < entries.length; later += 1) {
      const other = entries[later].effect;
      if (other.type === 'start' && other.id === effect.id) break;
      if (other.type === 'stop' && other.id === effect.id && !dropped.has(later)) {
        dropped.add(index);
        dropped.add(later);
        break;
      }
    }
  });
  return entries.filter((_, index) => !dropped.has(index));
}

/** Events are JSON by contract; `undefined` would vanish from the output, so it becomes `{}`. */
function jsonEvent(event) {
  return event === undefined || event === null ? {} : event;
}

/** A log value made JSON: non-serializable values become their string form. */
function jsonValue(value) {
  if (value === undefined) return null;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? null : JSON.parse(json);
  } catch {
    try {
      return String(value);
    } catch {
      return null;
    }
  }
}

/**
 * The `run` parts of the entries that concern running children, for one step: sends and
 * delayed sends to a child are the guest's (the child lives here, and so does the wait for a
 * delayed one); a `stop` is the guest's when the service runs here; a `cancel` when it names a
 * delayed send to a child, armed before or earlier in this step.
 */
export function childRuns(services) {
  const scheduled = new Set();
  return {
    delivery(effect) {
      const { to } = effect;
      if (!to || to.kind !== 'child') return null;
      if (effect.type === 'schedule') {
        scheduled.add(effect.id);
        return {
          label: `the delayed send ${effect.id} to child ${to.id}`,
          run: () => services.scheduleChildSend(effect.id, to.id, effect.event, effect.delay),
        };
      }
      return { label: `the send to child ${to.id}`, run: () => services.deliver(to.id, effect.event) };
    },

    cancel(effect) {
      if (!scheduled.has(effect.id) && !services.hasChildSend(effect.id)) return null;
      return { label: `the cancel of ${effect.id}`, run: () => services.cancelChildSend(effect.id) };
    },

    stop(effect) {
      if (!services.has(effect.id)) return null;
      return { label: `stopping ${effect.id}`, run: () => services.stop(effect.id) };
    },
  };
}
