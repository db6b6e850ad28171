// Running an XState 5 step's effects after the host committed it, the way XState 5's actor
// does, with the instance's events going to the outbox:
// - a custom action runs as `action.exec(info, params)`, what the actor's action executor
//   calls;
// - an invoked or spawned child is started through the step's own actor (the never-started
//   actor that carried the pure step), whose `_send` now hands what reaches it to the outbox:
//   `xstate.done.actor.<id>` `{output, actorId}`, `xstate.error.actor.<id>` `{error: {name,
//   message}, actorId}`, and whatever the child sends to its parent (`sendBack`, `sendParent`);
// - a child is stopped through that actor's scope, as XState stops children (the promise's
//   AbortSignal fires, a callback's cleanup runs, a machine stops its own children).
// Promise, callback, observable, transition and machine logic all run; they are XState's own.
import { errorJson } from './json.js';

const DONE_PREFIX = 'xstate.done.actor.';
const ERROR_PREFIX = 'xstate.error.actor.';

export function createV5Runner({ services, hostOps }) {
  function emitFromChild(event) {
    const type = event && typeof event.type === 'string' ? event.type : '';
    if (type.startsWith(ERROR_PREFIX)) {
      services.emit({ ...event, error: errorJson(event.error) });
    } else if (type.startsWith(DONE_PREFIX)) {
      if (!services.emit(event)) {
        const actorId = event.actorId;
        const error = { name: 'TypeError', message: `the output of ${actorId} is not JSON` };
        services.emit({ type: `${ERROR_PREFIX}${actorId}`, error, actorId });
      }
    } else {
      services.emit(event);
    }
  }

  /** Starts a child of `self` (the step's actor) that the step invoked or spawned. */
  function start(ref, self) {
    self._send = emitFromChild;
    const id = String(ref.id);
    const service = {
      stop: () => stop(ref),
      deliver: (event) => ref.send(event),
    };
    const ended = () => services.finished(id, service);
    services.add(id, service);
    ref.subscribe({ complete: ended, error: ended });
    hostOps.ownedBy(id, () => ref.start());
    if (ref.getSnapshot().status !== 'active') ended();
  }

  function stop(ref) {
    const parent = ref._parent;
    if (parent && parent._actorScope && typeof parent._actorScope.stopChild === 'function') {
      parent._actorScope.stopChild(ref);
    } else {
      ref._stop();
    }
  }

  function exec(action) {
    action.exec(action.info, action.params);
  }

  return { start, exec };
}
