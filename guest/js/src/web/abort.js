// `EventTarget`, `Event`, `AbortController` and `AbortSignal`, enough for cancellation: XState 5
// hands every promise actor an AbortSignal, and `fetch` honours one. Events do not propagate
// (there is no tree), and listener errors are reported on the console instead of thrown.

export class Event {
  #type;
  #defaultPrevented = false;

  constructor(type, options = {}) {
    if (arguments.length === 0) throw new TypeError('Event: the type is required');
    this.#type = String(type);
    this.cancelable = Boolean(options && options.cancelable);
    this.target = null;
    this.currentTarget = null;
    this.timeStamp = Date.now();
  }

  get type() {
    return this.#type;
  }

  get defaultPrevented() {
    return this.#defaultPrevented;
  }

  preventDefault() {
    if (this.cancelable) this.#defaultPrevented = true;
  }

  stopPropagation() {}

  stopImmediatePropagation() {}
}

export class EventTarget {
  #listeners = new Map();

  addEventListener(type, listener, options) {
    if (listener === null || listener === undefined) return;
    const once = typeof options === 'object' && options !== null && Boolean(options.once);
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    if (signal && signal.aborted) return;
    const key = String(type);
    const list = this.#listeners.get(key) || [];
    if (list.some((entry) => entry.listener === listener)) return;
    const entry = { listener, once };
    list.push(entry);
    this.#listeners.set(key, list);
    if (signal) signal.addEventListener('abort', () => this.removeEventListener(key, listener), { once: true });
  }

  removeEventListener(type, listener) {
    const list = this.#listeners.get(String(type));
    if (!list) return;
    this.#listeners.set(
      String(type),
      list.filter((entry) => entry.listener !== listener),
    );
  }

  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError('dispatchEvent needs an Event');
    event.target = this;
    event.currentTarget = this;
    const list = [...(this.#listeners.get(event.type) || [])];
    for (const entry of list) {
      if (entry.once) this.removeEventListener(event.type, entry.listener);
      try {
        const { listener } = entry;
        if (typeof listener === 'function') listener.call(this, event);
        else if (listener && typeof listener.handleEvent === 'function') listener.handleEvent(event);
      } catch (error) {
        console.error('an event listener threw:', error);
      }
    }
    event.currentTarget = null;
    return !event.defaultPrevented;
  }
}

function abortError(message) {
  return typeof DOMException === 'function'
    ? new DOMException(message, 'AbortError')
    : Object.assign(new Error(message), { name: 'AbortError' });
}

function timeoutError(message) {
  return typeof DOMException === 'function'
    ? new DOMException(message, 'TimeoutError')
    : Object.assign(new Error(message), { name: 'TimeoutError' });
}

/** Aborts a signal; set when the class below, which holds the private state, is defined. */
let signalAbort;

/** Only `AbortController` (and the static helpers) make signals. */
const CREATE = Symbol('create');

export class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  onabort = null;

  constructor(key) {
    if (key !== CREATE) throw new TypeError('Illegal constructor');
    super();
  }

  get aborted() {
    return this.#aborted;
  }

  get reason() {
    return this.#reason;
  }

  throwIfAborted() {
    if (this.#aborted) throw this.#reason;
  }

  static abort(reason) {
    const signal = new AbortSignal(CREATE);
    signalAbort(signal, reason);
    return signal;
  }

  /** Aborts after `ms`; in a running service the wait is a host `sleep` operation. */
  static timeout(ms) {
    const signal = new AbortSignal(CREATE);
    setTimeout(() => signalAbort(signal, timeoutError('The operation timed out.')), ms);
    return signal;
  }

  static any(signals) {
    const signal = new AbortSignal(CREATE);
    for (const source of signals) {
      if (source.aborted) {
        signalAbort(signal, source.reason);
        return signal;
      }
    }
    for (const source of signals) {
      source.addEventListener('abort', () => signalAbort(signal, source.reason), { once: true });
    }
    return signal;
  }

  static {
    signalAbort = (signal, reason) => {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined ? abortError('This operation was aborted') : reason;
      const event = new Event('abort');
      if (typeof signal.onabort === 'function') {
        try {
          signal.onabort.call(signal, event);
        } catch (error) {
          console.error('an abort handler threw:', error);
        }
      }
      signal.dispatchEvent(event);
    };
  }
}

export class AbortController {
  #signal = new AbortSignal(CREATE);

  get signal() {
    return this.#signal;
  }

  abort(reason) {
    signalAbort(this.#signal, reason);
  }
}
