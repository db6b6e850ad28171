// Tokens: what a pure step leaves in guest memory for `run_effects` — the live effect list
// (custom action closures, service creators, spawned entities, actor refs) and the host
// operations held back during the step.
//
// Only the newest MAX_TOKENS are kept. Opening one more forgets the oldest, with its held-back
// operations, exactly as `discard` would: a host that waits too long to call `run_effects`
// gets `bad-input` and the effects do not run (at most once).

export const MAX_TOKENS = 64;

export function createTokens(hostOps) {
  let nextToken = 1;
  const live = new Map();

  function forget(record) {
    live.delete(record.token);
    hostOps.drop(record.held);
  }

  return {
    /** A new token for the step about to run. */
    open() {
      const record = { token: nextToken, held: [], runs: [] };
      nextToken = nextToken >= 0xffffffff ? 1 : nextToken + 1;
      live.set(record.token, record);
      if (live.size > MAX_TOKENS) forget(live.values().next().value);
      return record;
    },

    /** Removes and returns the token's record, or null when it is not kept. */
    take(token) {
      const record = live.get(token);
      if (!record) return null;
      live.delete(token);
      return record;
    },

    /** Forgets a token and its held-back operations; false when it was not kept. */
    discard(token) {
      const record = live.get(token);
      if (!record) return false;
      forget(record);
      return true;
    },

    /**
     * Settles a finished step: a token with nothing to run is forgotten at once (the Step
     * then carries `"token": null`), otherwise it stays for `run_effects` or `discard`.
     */
    close(record, runs) {
      record.runs = runs;
      if (runs.length === 0 && record.held.length === 0) {
        live.delete(record.token);
        return null;
      }
      return record.token;
    },
  };
}
