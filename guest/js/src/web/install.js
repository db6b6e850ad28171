// Puts the web platform globals on the global object (docs/machine-abi.md, "The runtime
// environment").
//
// Globals that keep no state (encoding, URL, cloning, cancellation, Request/Response/Headers,
// crypto) are added where the engine has none, so under Node the tests keep Node's own.
// `fetch` and the timers belong to the guest whose call is running: they are always replaced
// by dispatchers that go to that guest, and fall back to what was there before (Node's
// functions in the tests; nothing in the engine) when no guest call is running.
import { AbortController, AbortSignal, Event, EventTarget } from './abort.js';
import { Request, Response } from './body.js';
import { structuredClone } from './clone.js';
import { createCrypto } from './crypto.js';
import { TextDecoder, TextEncoder } from './encoding.js';
import { Headers } from './headers.js';
import { URLSearchParams } from './search-params.js';
import { URL } from './url.js';

/**
 * `current()` is the running guest's `{fetch, timers}` or null; `randomBytes(n)`, when given,
 * backs `crypto`.
 */
export function installWebGlobals(global, { current, randomBytes }) {
  const missing = {
    TextEncoder,
    TextDecoder,
    URL,
    URLSearchParams,
    structuredClone,
    Event,
    EventTarget,
    AbortController,
    AbortSignal,
    Headers,
    Request,
    Response,
  };
  if (typeof randomBytes === 'function') missing.crypto = createCrypto(randomBytes);
  for (const [name, value] of Object.entries(missing)) {
    if (global[name] === undefined) define(global, name, value);
  }

  const before = {
    fetch: global.fetch,
    setTimeout: global.setTimeout,
    clearTimeout: global.clearTimeout,
    setInterval: global.setInterval,
    clearInterval: global.clearInterval,
  };
  let nextInertTimer = 1;
  const inert = () => nextInertTimer++;

  define(global, 'fetch', function fetch(input, init) {
    const guest = current();
    if (guest) return guest.fetch(input, init);
    if (typeof before.fetch === 'function') return before.fetch(input, init);
    return Promise.reject(new TypeError('fetch is only available to machine actions and services'));
  });
  for (const name of ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval']) {
    define(global, name, {
      [name](...args) {
        const guest = current();
        if (guest) return guest.timers[name](...args);
        if (typeof before[name] === 'function') return before[name](...args);
        return name.startsWith('set') ? inert() : undefined;
      },
    }[name]);
  }
}

function define(global, name, value) {
  Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
}
