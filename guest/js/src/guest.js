// The machine ABI on the JavaScript side: one `call(op, input)` per ABI call, then `output()`
// for the JSON answer (docs/machine-abi.md).
//
// `call` may leave work on the job queue (loading a module is asynchronous, services await
// host operations); the engine runs every pending job before it asks for `output()`. Console
// output of the machine is captured between the two and returned with the answer. Whatever a
// call leaves for the host — the token of a step, the outbox of the effect operations — is
// also settled in `output()`, after the jobs ran.
import { badInput, classify, describe, invalidBundle, isOutOfMemory } from './errors.js';
import { createEffectOps } from './effect-ops.js';
import { createHostOps } from './host-ops.js';
import { createLogSink } from './logs.js';
import { createServices } from './services.js';
import { useXState4 } from './statebacked-rt.js';
import { createTokens } from './tokens.js';
import { machineError, user } from './user.js';
import { createV4 } from './v4.js';
import { createV5 } from './v5.js';
import { createFetch } from './web/fetch.js';
import { nextCall } from './web/math-random.js';
import { createTimers } from './web/timers.js';

export const ABI_VERSION = 2;
/** The specifier under which the engine serves the machine bundle being loaded. */
export const BUNDLE_SPECIFIER = 'statewire:machine';
/** The pinned XState 4 (with the recording `spawn`), which runs XState 4 child machines. */
export const XSTATE4_SPECIFIER = 'npm:xstate';
/** The pinned XState 5, needed to drive XState 5 machines. */
export const XSTATE5_SPECIFIER = 'npm:xstate@5';

const OP_CONFIGURE = 0;
const OP_LOAD = 1;
const OP_INIT = 2;
const OP_TRANSITION = 3;
const OP_ALLOW_READ = 4;
const OP_ALLOW_WRITE = 5;
const OP_RUN_EFFECTS = 6;
const OP_COMPLETE_OP = 7;
const OP_STOP_CHILD = 8;
const OP_DISCARD = 9;
const OP_RUNNING = 10;

/** Pure steps: they get a token, and host operations asked for during them are held back. */
const PURE_OPS = new Set([OP_INIT, OP_TRANSITION]);
/** The operations that answer with an outbox. */
const EFFECT_OPS = new Set([OP_RUN_EFFECTS, OP_COMPLETE_OP, OP_STOP_CHILD, OP_DISCARD, OP_RUNNING]);

/**
 * `importModule(specifier)` returns a promise of a module namespace. `host.setHeapLimit(bytes)`
 * and `host.setStackLimit(bytes)` apply the limits `configure` receives; outside the engine
 * they are absent and the limits are only validated.
 */
export function createGuest({ importModule, host = {} }) {
  const logs = createLogSink();
  const hostOps = createHostOps();
  hostOps.web = { fetch: createFetch(hostOps), timers: createTimers(hostOps) };
  const tokens = createTokens(hostOps);
  const services = createServices(hostOps);
  const effects = createEffectOps({ hostOps, tokens, services });
  let machine = null;
  let loadStarted = false;
  let op = -1;
  let outcome = null;
  let step = null;
  let outerConsole;

  const ops = {
    [OP_CONFIGURE]: configure,
    [OP_LOAD]: load,
    [OP_INIT]: init,
    [OP_TRANSITION]: transition,
    [OP_ALLOW_READ]: (input) => authorize('allowRead', input),
    [OP_ALLOW_WRITE]: (input) => authorize('allowWrite', input),
    [OP_RUN_EFFECTS]: (input) => effects.runEffects(loadedInput(input, 'run_effects input')),
    [OP_COMPLETE_OP]: (input) => effects.completeOp(loadedInput(input, 'complete_op input')),
    [OP_STOP_CHILD]: (input) => effects.stopChild(loadedInput(input, 'stop_child input')),
    [OP_DISCARD]: (input) => effects.discard(loadedInput(input, 'discard input')),
    [OP_RUNNING]: (input) => loadedInput(input, 'running input'),
  };

  function configure(input) {
    const settings = parseObject(input, 'configure input');
    const limits = [
      ['heapLimitBytes', host.setHeapLimit],
      ['stackLimitBytes', host.setStackLimit],
    ];
    for (const [name] of limits) {
      const bytes = settings[name];
      if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes <= 0)) {
        throw badInput(`${name} must be a positive integer`);
      }
    }
    for (const [name, apply] of limits) {
      if (settings[name] !== undefined && typeof apply === 'function') apply(settings[name]);
    }
    return {};
  }

  async function load() {
    if (loadStarted) throw badInput('load was already called on this module');
    loadStarted = true;
    let namespace;
    try {
      namespace = await importModule(BUNDLE_SPECIFIER);
    } catch (error) {
      if (isOutOfMemory(error)) throw error;
      throw invalidBundle(describe(error));
    }
    const exported = namespace.default;
    const major = majorOf(exported);
    for (const name of ['allowRead', 'allowWrite']) {
      if (typeof namespace[name] !== 'function') {
        throw invalidBundle(`the bundle must export a function named ${name}`);
      }
    }
    const xstate = await importModule(major === 5 ? XSTATE5_SPECIFIER : XSTATE4_SPECIFIER);
    let adapter;
    try {
      if (major === 5) {
        adapter = createV5(exported, xstate, { mute: logs.mute, services, hostOps });
      } else {
        useXState4(xstate);
        adapter = createV4(exported, { services, hostOps, xstate });
      }
    } catch (error) {
      if (isOutOfMemory(error)) throw error;
      throw invalidBundle(`the machine definition is invalid: ${describe(error)}`);
    }
    machine = { namespace, adapter };
    return {
      abi: ABI_VERSION,
      xstateMajor: major,
      exports: Object.keys(namespace).filter((name) => name !== 'default'),
    };
  }

  function init(input) {
    const args = parseObject(input, 'init input');
    const context = args.context === undefined ? {} : args.context;
    if (!isObject(context)) throw badInput('context must be an object');
    return stepped(loaded().adapter.init(context));
  }

  function transition(input) {
    const args = parseObject(input, 'transition input');
    if (!isObject(args.snapshot)) throw badInput('snapshot must be the object a previous step returned');
    const event = args.event;
    if (!isObject(event) || typeof event.type !== 'string') {
      throw badInput('event must be an object with a string type');
    }
    return stepped(loaded().adapter.transition(args.snapshot, event));
  }

  /** Keeps what the step's token needs; the token itself is settled in `output()`. */
  function stepped(result) {
    step.runs = result.runs;
    return result.step;
  }

  function authorize(name, input) {
    const args = parseObject(input, `${name} input`);
    const authorizer = loaded().namespace[name];
    const answer = user(() => authorizer(args));
    if (answer !== null && typeof answer === 'object' && typeof answer.then === 'function') {
      return Promise.resolve(answer).then(
        (value) => ({ allowed: Boolean(value) }),
        (error) => {
          throw machineError(error);
        },
      );
    }
    return { allowed: Boolean(answer) };
  }

  function loaded() {
    if (machine === null) throw badInput('no machine is loaded; call load first');
    return machine;
  }

  function loadedInput(input, what) {
    loaded();
    return parseObject(input, what);
  }

  function settle(result) {
    if (outcome === null) outcome = result;
  }

  function failed(error) {
    settle({ error: classify(error, 'internal') });
  }

  /** The token of the step that just ran, or null; a failed step's token is discarded. */
  function settleToken(result) {
    if (step === null) return;
    const { record, runs } = step;
    step = null;
    if (result.ok !== undefined) {
      result.ok.token = tokens.close(record, runs);
    } else {
      tokens.discard(record.token);
    }
  }

  return {
    /** Starts ABI operation `op` on its input text; the answer is read with `output()`. */
    call(opId, input) {
      nextCall();
      op = opId;
      outcome = null;
      step = null;
      outerConsole = globalThis.console;
      globalThis.console = logs.console;
      const run = ops[opId];
      if (run === undefined) {
        settle({ error: { kind: 'unsupported-op', message: `operation ${opId} is not known` } });
        return undefined;
      }
      if (PURE_OPS.has(opId)) {
        step = { record: tokens.open(), runs: [] };
        hostOps.begin('pure', step.record);
      } else {
        hostOps.begin(EFFECT_OPS.has(opId) ? 'effects' : 'closed');
      }
      let result;
      try {
        result = run(input);
      } catch (error) {
        failed(error);
        return undefined;
      }
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        return result.then((value) => settle({ ok: value }), failed);
      }
      settle({ ok: result === undefined ? {} : result });
      return undefined;
    },

    /** The JSON answer of the last `call`: `{"ok": …}` or `{"error": {kind, message}}`. */
    output() {
      let result = outcome;
      outcome = null;
      if (result === null) {
        result = {
          error: {
            kind: op === OP_LOAD ? 'invalid-bundle' : 'machine-threw',
            message: 'the call did not finish: it waits for a promise that never settles',
          },
        };
      }
      settleToken(result);
      if (EFFECT_OPS.has(op)) {
        const outbox = effects.outbox();
        if (result.ok !== undefined) result.ok = outbox;
        else result.error.outbox = outbox;
      }
      hostOps.end();
      globalThis.console = outerConsole;
      const captured = logs.take();
      if (result.ok !== undefined) {
        if (captured.length > 0) result.ok.logs = captured;
        try {
          return JSON.stringify(result);
        } catch (error) {
          if (typeof result.ok.token === 'number') tokens.discard(result.ok.token);
          const { kind, message } = classify(error, 'machine-threw');
          result = { error: { kind, message: `the result is not JSON: ${message}` } };
        }
      }
      if (captured.length > 0) result.error.logs = captured;
      return JSON.stringify(result);
    },
  };
}

function majorOf(machine) {
  if (machine === null || (typeof machine !== 'object' && typeof machine !== 'function')) {
    throw invalidBundle('the bundle has no default export of an XState machine');
  }
  if (typeof machine.getInitialSnapshot === 'function' && typeof machine.restoreSnapshot === 'function') {
    return 5;
  }
  if (machine.__xstatenode === true) return 4;
  throw invalidBundle('the default export is not an XState 4 or XState 5 machine');
}

function parseObject(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badInput(`${what} is not JSON: ${describe(error)}`);
  }
  if (!isObject(value)) throw badInput(`${what} must be a JSON object`);
  return value;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
