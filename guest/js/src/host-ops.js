// Host operations: work the guest cannot do itself (`fetch`, waiting for time), handed to the
// host in the outbox of a call and answered later with `complete_op` (docs/machine-abi.md,
// "Host operations").
//
// Each call runs in one phase:
// - `pure` (init, transition): an operation is recorded under the step's token and held back;
//   `run_effects` of that token releases it, `discard` drops it. Timers are inert.
// - `effects` (run_effects, complete_op, stop_child, discard, running): operations go straight
//   to the outbox; timers become `sleep` operations.
// - `closed` (configure, load, the authorizers): there is no operation to ask for.
//
// Every operation has an owner: the running service whose code asked for it, when known. It is
// the service being started, the one a delivered event went to, or the owner of the operation
// whose completion is being handled (every job of a `complete_op` call descends from that
// completion, since each call drains the job queue). Code that runs later from a job queued
// elsewhere has no owner. Stopping a service aborts the operations it owns.

/** The guest whose call is running (in Node tests several guests share one global scope). */
let active = null;

export const activeOps = () => active;

export function createHostOps() {
  let nextOpId = 1;
  let nextTimerId = 1;
  const pending = new Map();
  let phase = 'closed';
  let token = null;
  let owner = null;
  let ops = [];
  let aborted = [];

  const describe = (op) => ({ opId: op.opId, kind: op.kind, ...op.payload });

  const self = {
    get phase() {
      return phase;
    },

    /** Starts a call in `callPhase`; `stepToken` receives operations held back in a pure step. */
    begin(callPhase, stepToken = null) {
      phase = callPhase;
      token = stepToken;
      owner = null;
      active = self;
    },

    /** Ends the call: what was asked for is in the outbox, nothing more can be. */
    end() {
      phase = 'closed';
      token = null;
      owner = null;
      if (active === self) active = null;
    },

    nextTimerId: () => nextTimerId++,

    /**
     * Asks the host for an operation. `settle(result)` runs when the host completes it;
     * `dropped()` when it is aborted or discarded instead. Returns the operation id.
     */
    request(kind, payload, settle, dropped = () => {}) {
      if (phase === 'closed') throw new TypeError(`no ${kind} operation can be started now`);
      const op = { opId: nextOpId++, kind, payload, owner, settle, dropped, held: phase === 'pure' };
      pending.set(op.opId, op);
      if (op.held) token.held.push(op.opId);
      else ops.push(describe(op));
      return op.opId;
    },

    /** Puts the held-back operations of a committed step into the outbox. */
    release(opIds) {
      for (const opId of opIds) {
        const op = pending.get(opId);
        if (op && op.held) {
          op.held = false;
          ops.push(describe(op));
        }
      }
    },

    /** Forgets held-back operations of a step that was not committed; they never settle. */
    drop(opIds) {
      for (const opId of opIds) {
        const op = pending.get(opId);
        if (op && op.held) forget(op);
      }
    },

    /** The guest no longer wants operation `opId` (a cleared timer, an aborted fetch). */
    cancel(opId) {
      const op = pending.get(opId);
      if (!op) return;
      forget(op);
      if (!op.held) aborted.push(opId);
    },

    /** Aborts the released operations `id` owns. */
    abortOwnedBy(id) {
      for (const op of [...pending.values()]) {
        if (op.owner === id && !op.held) self.cancel(op.opId);
      }
    },

    /** Hands the host's result to the operation; false when it is not waiting for one. */
    complete(opId, result) {
      const op = pending.get(opId);
      if (!op || op.held) return false;
      pending.delete(opId);
      owner = op.owner;
      op.settle(result);
      return true;
    },

    /** Runs `fn` with `id` as the owner of what it asks for. */
    ownedBy(id, fn) {
      const saved = owner;
      owner = id;
      try {
        return fn();
      } finally {
        owner = saved;
      }
    },

    /** The operations asked for and aborted since the last take. */
    take() {
      const taken = { ops, abort: aborted };
      ops = [];
      aborted = [];
      return taken;
    },
  };

  function forget(op) {
    pending.delete(op.opId);
    op.dropped();
  }

  return self;
}
