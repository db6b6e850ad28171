// Running an XState 4 step's effects after the host committed it, the way XState 4's
// interpreter does (`lib/interpreter.js`: `exec`, `spawn`, `spawnPromise`, `spawnCallback`,
// `spawnMachine`, `spawnObservable`, `spawnActivity`), with the instance's events going to the
// outbox instead of into an interpreter:
// - a custom action gets `(context, event, meta)`, where `meta` is `{action, state, _event}`,
//   or `{action, _event}` under `predictableActionArguments`;
// - an invoked service's creator, `machine.options.services[src]`, gets `(context, event,
//   {data, src, meta})` with the step's final context;
// - a promise resolves to `done.invoke.<id>` `{data}` and rejects to `error.platform.<id>`
//   `{data: {name, message}}`; neither is sent after a stop;
// - a callback gets `(sendBack, receive)`; what it sends back goes to the instance, events for
//   it arrive at its `receive` listeners, and its cleanup runs when it is stopped;
// - a machine runs in XState 4's own interpreter, with a stand-in parent that passes what it
//   sends to the instance; when it is done the instance gets `done.invoke.<id>` `{data}`;
// - an observable's values are events for the instance; its end is `done.invoke.<id>`.
// Not supported: `autoForward` and `sync` (a warning is logged), spawned behaviors and actors.
import { errorJson } from './json.js';

export function createV4Runner({ machine, services, hostOps, interpret }) {
  const predictable = Boolean(machine.config && machine.config.predictableActionArguments);

  function exec(action, state) {
    const meta = predictable ? { action, _event: state._event } : { action, state, _event: state._event };
    action.exec(state.context, state._event.data, meta);
  }

  function invoke(activity, state) {
    const id = String(activity.id);
    const src = typeof activity.src === 'string' ? { type: activity.src } : activity.src;
    const services4 = machine.options.services || {};
    const creator = services4[src.type];
    if (creator === undefined || creator === null) {
      console.warn(`invoke ${id}: the machine has no service named "${src.type}"`);
      return;
    }
    if (typeof creator === 'string') return;
    let source;
    try {
      source = hostOps.ownedBy(id, () => {
        const data = activity.data ? mapContext(activity.data, state.context, state._event) : undefined;
        const made =
          typeof creator === 'function'
            ? creator(state.context, state._event.data, { data, src, meta: activity.meta })
            : creator;
        return isMachine(made) && data ? made.withContext(data) : made;
      });
    } catch (error) {
      emitError(id, error);
      return;
    }
    if (!source) return;
    if (activity.autoForward || activity.forward) {
      console.warn(`invoke ${id}: autoForward is not supported; events are not forwarded to it`);
    }
    entity(id, source);
  }

  /** A legacy activity: `machine.options.activities[type](context, activity)`, disposed on stop. */
  function activity(definition, state) {
    const id = String(definition.id !== undefined ? definition.id : definition.type);
    const activities = machine.options.activities || {};
    const implementation = activities[definition.type];
    if (typeof implementation !== 'function') return;
    const dispose = hostOps.ownedBy(id, () => implementation(state.context, definition));
    services.add(id, {
      stop: () => {
        if (typeof dispose === 'function') dispose();
      },
      deliver() {},
    });
  }

  /** Starts a spawned or invoked entity under `id`. */
  function entity(id, value, options = {}) {
    if (options.sync) console.warn(`spawn ${id}: sync is not supported`);
    if (options.autoForward) console.warn(`spawn ${id}: autoForward is not supported`);
    if (isPromiseLike(value)) return promise(id, value);
    if (typeof value === 'function') return callback(id, value);
    if (isMachine(value)) return child(id, value);
    if (value && typeof value.subscribe === 'function') return observable(id, value);
    return emitError(id, new TypeError(`Unable to spawn entity "${id}" of type "${typeof value}".`));
  }

  function promise(id, value) {
    let canceled = false;
    const service = {
      stop: () => {
        canceled = true;
      },
      deliver() {},
    };
    services.add(id, service);
    Promise.resolve(value).then(
      (data) => {
        if (canceled) return;
        services.finished(id, service);
        emitDone(id, data);
      },
      (error) => {
        if (canceled) return;
        services.finished(id, service);
        emitError(id, error);
      },
    );
  }

  function callback(id, fn) {
    let canceled = false;
    let cleanup;
    const receivers = new Set();
    const service = {
      stop() {
        canceled = true;
        if (typeof cleanup === 'function') cleanup();
      },
      deliver(event) {
        for (const receiver of receivers) receiver(event);
      },
    };
    const sendBack = (event) => {
      if (!canceled) services.emit(typeof event === 'string' ? { type: event } : event);
    };
    services.add(id, service);
    try {
      cleanup = hostOps.ownedBy(id, () => fn(sendBack, (listener) => receivers.add(listener)));
    } catch (error) {
      services.finished(id, service);
      emitError(id, error);
      return;
    }
    if (isPromiseLike(cleanup)) {
      // An async callback: XState 4 treats what it returns as a promise service.
      services.finished(id, service);
      promise(id, cleanup);
    }
  }

  function child(id, childMachine) {
    const parent = {
      id: 'statewire.instance',
      send: (event) => services.emit(typeof event === 'string' ? { type: event } : event),
    };
    const interpreter = interpret(childMachine, { parent, id, deferEvents: true, devTools: false });
    const service = {
      stop: () => interpreter.stop(),
      deliver: (event) => interpreter.send(event),
    };
    interpreter.onDone((done) => {
      services.finished(id, service);
      emitEvent({ type: `done.invoke.${id}`, data: done.data }, id);
    });
    services.add(id, service);
    try {
      hostOps.ownedBy(id, () => interpreter.start());
    } catch (error) {
      services.finished(id, service);
      emitError(id, error);
    }
  }

  function observable(id, source) {
    let subscription = null;
    const service = {
      stop: () => subscription && subscription.unsubscribe(),
      deliver() {},
    };
    services.add(id, service);
    subscription = hostOps.ownedBy(id, () =>
      source.subscribe(
        (value) => services.emit(value),
        (error) => {
          services.finished(id, service);
          emitError(id, error);
        },
        () => {
          services.finished(id, service);
          services.emit({ type: `done.invoke.${id}` });
        },
      ),
    );
  }

  function emitDone(id, data) {
    emitEvent({ type: `done.invoke.${id}`, data }, id);
  }

  /** A result that is not JSON becomes the service's error event. */
  function emitEvent(event, id) {
    if (!services.emit(event)) {
      emitError(id, new TypeError(`the result of ${id} is not JSON`));
    }
  }

  function emitError(id, error) {
    services.emit({ type: `error.platform.${id}`, data: errorJson(error) });
  }

  return { exec, invoke, activity, entity };
}

/** XState 4's `mapContext`: invoke `data` as a function, or an object of values and functions. */
export function mapContext(mapper, context, _event) {
  if (typeof mapper === 'function') return mapper(context, _event.data);
  const result = {};
  for (const key of Object.keys(mapper)) {
    const value = mapper[key];
    result[key] = typeof value === 'function' ? value(context, _event.data) : value;
  }
  return result;
}

export function isMachine(value) {
  return value !== null && typeof value === 'object' && value.__xstatenode === true;
}

function isPromiseLike(value) {
  const kind = typeof value;
  return value !== null && (kind === 'object' || kind === 'function') && typeof value.then === 'function';
}
