// The effect operations of ABI version 2: `run_effects`, `complete_op`, `stop_child`,
// `discard` and `running` (docs/machine-abi.md, "Running effects"). Each answers with the
// outbox: the host operations asked for or aborted, events for the instance, sends to other
// actors, and the ids of the services still running.
import { badInput, isOutOfMemory } from './errors.js';
import { MAX_TOKENS } from './tokens.js';

export function createEffectOps({ hostOps, tokens, services }) {
  return {
    /** Runs a committed step's effects in list order, after releasing its held-back operations. */
    runEffects(args) {
      const token = tokenOf(args);
      const record = tokens.take(token);
      if (record === null) {
        throw badInput(
          `token ${token} is not kept: it already ran, was discarded, or is older than the last ${MAX_TOKENS}`,
        );
      }
      hostOps.release(record.held);
      for (const { label, run } of record.runs) {
        try {
          run();
        } catch (error) {
          if (isOutOfMemory(error)) throw error;
          console.error(`${label} threw:`, error);
        }
      }
    },

    /** Settles the promise (or fires the timer) waiting for one host operation. */
    completeOp(args) {
      const { opId, result } = args;
      if (!Number.isSafeInteger(opId) || opId <= 0) throw badInput('opId must be a positive integer');
      if (result === null || typeof result !== 'object' || Array.isArray(result)) {
        throw badInput('result must be an object');
      }
      hostOps.complete(opId, result);
    },

    stopChild(args) {
      if (typeof args.id !== 'string') throw badInput('id must be a string');
      services.stop(args.id);
    },

    discard(args) {
      tokens.discard(tokenOf(args));
    },

    /** What the call leaves for the host; taken once, after every job of the call ran. */
    outbox() {
      const { ops, abort } = hostOps.take();
      const { events, sends } = services.take();
      return { ops, abort, events, sends, running: services.ids() };
    },
  };
}

function tokenOf(args) {
  const { token } = args;
  if (!Number.isSafeInteger(token) || token <= 0) throw badInput('token must be a positive integer');
  return token;
}
