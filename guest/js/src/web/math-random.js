// `Math.random` that copies of one loaded guest do not share.
//
// The host may copy a loaded guest's memory into many instances; QuickJS's own generator
// lives in that memory, so every copy would draw the same sequence (measured: the first
// `Math.random()` of each copy was the same number). That matters: XState 5 names id-less
// delayed events with `Math.random`, and two steps of one instance served by two fresh copies
// would give two timers the same id. This generator (xoshiro128**) stirs 16 fresh bytes from
// the engine's random source into its state on its first use in each ABI call, so copies part
// ways as soon as they draw. Calls that never use `Math.random` pay nothing.

let generation = 0;

/** Called at the start of every ABI call. */
export function nextCall() {
  generation += 1;
}

/** `randomBytes(n)` returns an ArrayBuffer of `n` fresh random bytes. */
export function createMathRandom(randomBytes) {
  const state = new Uint32Array(4);
  let stirred = -1;

  function stir() {
    const fresh = new Uint32Array(randomBytes(16));
    for (let i = 0; i < 4; i += 1) state[i] ^= fresh[i];
    if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;
    stirred = generation;
  }

  function next() {
    const result = Math.imul(rotl(Math.imul(state[1], 5), 7), 9) >>> 0;
    const t = state[1] << 9;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 11);
    return result;
  }

  return function random() {
    if (stirred !== generation) stir();
    // 53 random bits: 27 from one draw, 26 from the next.
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}
