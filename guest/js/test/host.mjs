// A host loop for tests: what the server's effect pipeline does with a guest, without the
// server. Each event is a pure step, "committed" at once (the snapshot kept), then its token's
// effects run; the outbox's operations are answered on a virtual clock (a fetch at once, a
// sleep after its delay), and its events, like the step's own `enqueue`s, are delivered as
// further events, before any operation completes.
import { ok } from './harness.mjs';

/**
 * `answer(request)` gives the result of a fetch operation (the ABI's `complete_op` result).
 * `history` lists `{event, step}` per delivered event; `requests` every fetch the guest asked
 * for, in order; `outboxes` every outbox.
 */
export function hostFor(guest, { answer = () => ({ ok: false, error: 'no network in this test' }) } = {}) {
  const host = {
    snapshot: null,
    history: [],
    requests: [],
    outboxes: [],
    sends: [],
    events: [],
    ops: [],
    nowMs: 0,
    aborted: [],
  };

  function absorb(outbox) {
    host.outboxes.push(outbox);
    for (const op of outbox.ops) {
      const dueMs = op.kind === 'sleep' ? host.nowMs + op.ms : host.nowMs;
      host.ops.push({ ...op, dueMs });
      if (op.kind === 'fetch') host.requests.push(op.request);
    }
    host.aborted.push(...outbox.abort);
    host.ops = host.ops.filter((op) => !outbox.abort.includes(op.opId));
    host.events.push(...outbox.events);
    host.sends.push(...outbox.sends);
    return outbox;
  }

  async function commit(event, step) {
    host.snapshot = step.snapshot;
    host.history.push({ event, step });
    for (const effect of step.effects) {
      if (effect.type === 'enqueue') host.events.push(effect.event);
    }
    if (step.token !== null) absorb(ok(await guest.runEffects(step.token)));
    return step;
  }

  host.init = async (context = {}) => commit(null, ok(await guest.init(context)));

  /** Delivers one event (no settling). */
  host.send = async (event) => commit(event, ok(await guest.transition(host.snapshot, event)));

  /** Delivers queued events and answers operations until nothing is left (or `untilMs`). */
  host.settle = async ({ untilMs = Infinity } = {}) => {
    for (;;) {
      if (host.events.length > 0) {
        await host.send(host.events.shift());
        continue;
      }
      host.ops.sort((a, b) => a.dueMs - b.dueMs || a.opId - b.opId);
      const op = host.ops[0];
      if (!op || op.dueMs > untilMs) break;
      host.ops.shift();
      host.nowMs = Math.max(host.nowMs, op.dueMs);
      const result = op.kind === 'fetch' ? await answer(op.request) : {};
      absorb(ok(await guest.completeOp(op.opId, result)));
    }
    if (untilMs !== Infinity) host.nowMs = Math.max(host.nowMs, untilMs);
    return host;
  };

  host.state = () => host.history.at(-1).step.state;
  host.context = () => host.history.at(-1).step.context;
  host.eventTypes = () => host.history.slice(1).map(({ event }) => event.type);
  host.delivered = (type) => host.history.find(({ event }) => event && event.type === type)?.event;

  return host;
}

/** A fetch result with a JSON body. */
export function jsonAnswer(body, status = 200) {
  return { ok: true, status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** Runs `fn` with `globalThis.fetch` replaced, for XState's own interpreter running in Node. */
export async function withFetch(stub, fn) {
  const dispatcher = globalThis.fetch;
  globalThis.fetch = stub;
  try {
    return await fn();
  } finally {
    globalThis.fetch = dispatcher;
  }
}
