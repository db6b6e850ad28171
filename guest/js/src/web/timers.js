// `setTimeout`, `setInterval` and their `clear…`, per guest. While effects run (a service, a
// custom action, a timer callback) a timer is a host `sleep` operation and its callback runs
// when the host completes it: the wait is ephemeral, not durable. During a pure step, while
// loading and in the authorizers, timers are inert as before: they get an id and never fire.

/** Browsers treat longer delays as overflowing 32 bits; so do we (the delay becomes 0). */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function createTimers(hostOps) {
  const live = new Map();

  function delayOf(ms) {
    const delay = Math.floor(Number(ms));
    if (!Number.isFinite(delay) || delay < 0 || delay > MAX_DELAY_MS) return 0;
    return delay;
  }

  function arm(id, timer, delay) {
    timer.opId = hostOps.request(
      'sleep',
      { ms: delay },
      () => fire(id),
      () => live.delete(id),
    );
  }

  function fire(id) {
    const timer = live.get(id);
    if (!timer) return;
    if (timer.repeatMs === null) live.delete(id);
    else arm(id, timer, timer.repeatMs);
    try {
      timer.callback(...timer.args);
    } catch (error) {
      console.error('a timer callback threw:', error);
    }
  }

  function set(callback, ms, args, repeat) {
    const id = hostOps.nextTimerId();
    if (hostOps.phase !== 'effects' || typeof callback !== 'function') return id;
    const delay = delayOf(ms);
    const timer = { callback, args, repeatMs: repeat ? delay : null, opId: 0 };
    live.set(id, timer);
    arm(id, timer, delay);
    return id;
  }

  function clear(id) {
    const timer = live.get(id);
    if (!timer || hostOps.phase !== 'effects') return;
    live.delete(id);
    hostOps.cancel(timer.opId);
  }

  return {
    setTimeout: (callback, ms, ...args) => set(callback, ms, args, false),
    setInterval: (callback, ms, ...args) => set(callback, ms, args, true),
    clearTimeout: clear,
    clearInterval: clear,
  };
}
