// The oracle for effect lists: turns what the real xstate packages return from a pure step
// (XState 4: `state.actions`; XState 5: the actions `transition` collects) into the normalized
// list docs/machine-abi.md ("Effects") specifies. It is written from that page and from
// XState's own action objects, on purpose without looking at the runtime's normalizer, so the
// golden test checks one against the other.
//
// Anything it does not know throws: an oracle that guessed would prove nothing.
import { randomUUID } from "node:crypto";

/** Stands for a value XState itself draws at random (an id-less XState 5 delayed send). */
export const ANY_STRING = Object.freeze({ $any: "string" });

/** Inline actions are named by their source text, cut to this many characters. */
const ACTION_NAME_CHARS = 200;

const SELF = null;
const parent = () => ({ kind: "parent" });
const child = (id) => ({ kind: "child", id });

// ---------------------------------------------------------------------------------------------
// State Backed's runtime hook. Real xstate knows nothing of persistent instances, so this models
// `globalThis.__statebacked_rt.spawn` from its documented shape ("State Backed's runtime
// hook"): a `spawn-instance` effect, and the reference the library builds without a runtime.

let spawnSink = null;

function spawnInstance(descriptor, options = {}) {
  if (typeof descriptor?.machineName !== "string") {
    throw new TypeError("the golden runtime hook models persistent instances only");
  }
  const named = typeof options.name === "string";
  const id = named ? options.name : randomUUID();
  const machineInstanceName = descriptor.machineInstanceName ?? randomUUID();
  spawnSink?.push({
    type: "spawn-instance",
    id: named ? id : ANY_STRING,
    machineName: descriptor.machineName,
    machineInstanceName: descriptor.machineInstanceName ?? ANY_STRING,
    machineVersionId: descriptor.machineVersionId ?? null,
    context: options.context === undefined ? null : JSON.parse(JSON.stringify(options.context)),
  });
  return { ...descriptor, type: "statebacked.instance", id, machineInstanceName };
}

globalThis.__statebacked_rt = { spawn: spawnInstance };

/** Runs `step` with persistent spawns going to `sink` (spawns anywhere else are not effects). */
export function recordingSpawns(sink, step) {
  const before = spawnSink;
  spawnSink = sink;
  try {
    return step();
  } finally {
    spawnSink = before;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared rules.

function nameOfAction(text) {
  return text.slice(0, ACTION_NAME_CHARS);
}

function instanceAddress(ref) {
  return {
    kind: "instance",
    machineName: ref.machineName,
    machineInstanceName: ref.machineInstanceName,
  };
}

const isInstanceRef = (to) => typeof to === "object" && to?.type === "statebacked.instance";

/** A send: delayed ones are timers, immediate ones to self are enqueued. */
function sendEffect({ to, event, delay, id }) {
  if (typeof delay === "number") {
    return { type: "schedule", id: id ?? ANY_STRING, delay, event, to };
  }
  return to === SELF ? { type: "enqueue", event } : { type: "send", to, event };
}

/** A `start` that a later `stop` of the same id undoes is dropped with that `stop`. */
function netOut(effects) {
  const dropped = new Set();
  effects.forEach((effect, i) => {
    if (effect.type !== "start") return;
    const stop = effects.findIndex(
      (later, j) => j > i && !dropped.has(j) && later.type === "stop" && later.id === effect.id,
    );
    if (stop !== -1) {
      dropped.add(i);
      dropped.add(stop);
    }
  });
  return effects.filter((_, i) => !dropped.has(i));
}

const plain = (value) => JSON.parse(JSON.stringify(value ?? null));

// ---------------------------------------------------------------------------------------------
// XState 4: `state.actions` of `machine.transition`.

function addressV4(to) {
  if (to === undefined || to === "#_internal") return SELF;
  if (to === "#_parent") return parent();
  if (typeof to === "string") return child(to);
  if (isInstanceRef(to)) return instanceAddress(to);
  throw new Error(`the oracle does not model sends to ${JSON.stringify(to)}`);
}

const isPersistentSource = (src) => typeof src === "object" && src?.type === "statebacked.invoke";

/** An invoke's `data` mapped as XState 4 maps it for the service it starts. */
function mapData(data, context, event) {
  if (data === undefined) return null;
  if (typeof data === "function") return data(context, event);
  return Object.fromEntries(
    Object.entries(data).map(([key, value]) => [
      key,
      typeof value === "function" ? value(context, event) : value,
    ]),
  );
}

function effectV4(action, state) {
  switch (action.type) {
    case "xstate.send":
      // A send without delay to `#_internal` is a raise: handled inside the step.
      if (action.to === "#_internal" && typeof action.delay !== "number") return [];
      return [sendEffect({ ...action, to: addressV4(action.to) })];
    case "xstate.raise":
      return typeof action.delay === "number"
        ? [sendEffect({ ...action, to: SELF })]
        : [];
    case "xstate.cancel":
      return [{ type: "cancel", id: action.sendId }];
    case "xstate.start": {
      const { activity } = action;
      if (activity.type !== "xstate.invoke") break;
      if (isPersistentSource(activity.src)) {
        const { machineName, machineInstanceName, machineVersionId } = activity.src;
        return [
          {
            type: "spawn-instance",
            id: activity.id,
            machineName,
            machineInstanceName,
            machineVersionId: machineVersionId ?? null,
            context: plain(mapData(activity.data, state.context, state.event)),
          },
        ];
      }
      const src = typeof activity.src === "string" ? activity.src : activity.src.type;
      return [{ type: "start", id: activity.id, src }];
    }
    case "xstate.stop": {
      const { activity } = action;
      if (activity.type !== "xstate.invoke") break;
      // A persistent instance outlives the state that invoked it.
      return isPersistentSource(activity.src) ? [] : [{ type: "stop", id: activity.id }];
    }
    case "xstate.log":
      return [{ type: "log", label: action.label ?? null, value: action.value }];
    default:
      if (!action.type.startsWith("xstate.")) {
        // XState 4 already named inline functions: their name, else their source text.
        return [{ type: "exec", action: nameOfAction(action.type) }];
      }
  }
  throw new Error(`the oracle does not model the XState 4 action ${JSON.stringify(action)}`);
}

/**
 * The effects of one XState 4 step: persistent instances spawned while the step was computed
 * come first (XState 4 spawns during the transition), then the action list in its order.
 */
export function effectsV4(state, spawned) {
  const effects = [...spawned, ...state.actions.flatMap((action) => effectV4(action, state))];
  return plain(netOut(effects));
}

// ---------------------------------------------------------------------------------------------
// XState 5: the executable actions of `transition` / `initialTransition`.

/** Marks where, among the collected actions, a persistent instance was spawned. */
export const SPAWNED = Symbol("spawned persistent instance");

/** `self` is the step's actor, which XState hands every action it collects (`info.self`). */
function addressV5(to, self) {
  if (to === self) return SELF;
  if (to !== undefined && to === self._parent) return parent();
  if (isInstanceRef(to)) return instanceAddress(to);
  if (typeof to?.id === "string" && typeof to.send === "function") return child(to.id);
  throw new Error(`the oracle does not model sends to ${JSON.stringify(to)}`);
}

function effectV5(action) {
  if (action[SPAWNED]) return [action[SPAWNED]];
  const params = action.params ?? {};
  switch (action.type) {
    case "xstate.raise":
      return typeof params.delay === "number" ? [sendEffect({ ...params, to: SELF })] : [];
    case "xstate.sendTo":
      return [sendEffect({ ...params, to: addressV5(params.to, action.info.self) })];
    case "xstate.cancel":
      return [{ type: "cancel", id: params.sendId }];
    case "xstate.spawnChild":
      return [
        { type: "start", id: params.id, src: typeof params.src === "string" ? params.src : params.id },
      ];
    case "xstate.stopChild":
      // The params are the child's actor reference itself.
      return [{ type: "stop", id: typeof params === "string" ? params : params.id }];
    case "xstate.log":
      return [{ type: "log", label: params.label ?? null, value: params.value }];
    case "xstate.emit":
      return [];
    default:
      if (!action.type.startsWith("xstate.")) {
        // XState 5 calls a nameless inline function "(anonymous)"; its source text names it.
        const name =
          action.type === "(anonymous)" && typeof action.exec === "function"
            ? action.exec.name || String(action.exec)
            : action.type;
        return [{ type: "exec", action: nameOfAction(name) }];
      }
  }
  throw new Error(`the oracle does not model the XState 5 action ${action.type}`);
}

/** The effects of one XState 5 step, from the actions it collected, in their order. */
export function effectsV5(collected) {
  return plain(netOut(collected.flatMap(effectV5)));
}
