// Building blocks of the normalized effect list (docs/machine-abi.md, "Effects").
//
// Both XState majors are reduced to the same few effect shapes. The rules, applied by the
// per-major adapters in v4.js and v5.js:
// - a send or raise with a numeric delay becomes `schedule`; `cancel` becomes `cancel`;
// - a send without delay becomes `enqueue` (to self) or `send` (to anyone else);
// - starting an invoked or spawned actor becomes `start`, stopping one `stop`, and a start that
//   a later `stop` in the same list undoes is dropped together with that stop;
// - `log` becomes `log`; any other action the machine defines becomes `exec`;
// - the order is the order XState gives.

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
  let action = typeof name === 'string' && name ? name : '(anonymous)';
  if (action.length > MAX_ACTION_NAME_CHARS) {
    action = `${action.slice(0, MAX_ACTION_NAME_CHARS)}…`;
  }
  return { type: 'exec', action };
}

/**
 * Drops every `start` that a later `stop` of the same id undoes, together with that `stop`.
 * `neverStarted(id)` lets an adapter drop starts XState itself says did not happen.
 */
export function netStarts(effects, neverStarted = () => false) {
  const dropped = new Set();
  effects.forEach((effect, index) => {
    if (effect.type !== 'start') return;
    if (neverStarted(effect.id)) {
      dropped.add(index);
    }
    for (let later = index + 1; later < effects.length; later += 1) {
      const other = effects[later];
      if (other.type === 'start' && other.id === effect.id) break;
      if (other.type === 'stop' && other.id === effect.id && !dropped.has(later)) {
        dropped.add(index);
        dropped.add(later);
        break;
      }
    }
  });
  return effects.filter((_, index) => !dropped.has(index));
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
