// The services running in this guest (invoked or spawned promises, callbacks, observables,
// child machines, XState 5 actors), by id, and what they have for the host: events for the
// instance itself and sends to other actors.
//
// A service is `{stop(), deliver(event)}`. Ids are XState's: one namespace per instance, so a
// second service started under a running id replaces (stops) the first.
import { toJson } from './json.js';

export function createServices(hostOps) {
  const running = new Map();
  const childSends = new Map();
  let events = [];
  let sends = [];

  function halt(id, service) {
    try {
      hostOps.ownedBy(id, () => service.stop());
    } catch (error) {
      console.error(`stopping service ${id} threw:`, error);
    }
    hostOps.abortOwnedBy(id);
  }

  const self = {
    add(id, service) {
      const previous = running.get(id);
      if (previous) {
        console.warn(`service ${id} was started while one with that id runs; the older one is stopped`);
        running.delete(id);
        halt(id, previous);
      }
      running.set(id, service);
    },

    /** A service ended by itself (settled, completed, failed). */
    finished(id, service) {
      if (running.get(id) === service) running.delete(id);
    },

    has: (id) => running.has(id),

    /** Stops a running service: its later results are dropped and its operations aborted. */
    stop(id) {
      const service = running.get(id);
      if (!service) return false;
      running.delete(id);
      halt(id, service);
      return true;
    },

    /** Delivers an event the instance sends to its running child `id`. */
    deliver(id, event) {
      const service = running.get(id);
      if (!service) {
        console.warn(`event ${event && event.type} for child ${id} was dropped: no such child is running`);
        return;
      }
      try {
        hostOps.ownedBy(id, () => service.deliver(event));
      } catch (error) {
        console.error(`child ${id} threw while handling ${event && event.type}:`, error);
      }
    },

    /** A delayed send to a running child: an ephemeral wait, as the child is ephemeral too. */
    scheduleChildSend(sendId, childId, event, delayMs) {
      self.cancelChildSend(sendId);
      const opId = hostOps.ownedBy(childId, () =>
        hostOps.request(
          'sleep',
          { ms: Math.max(0, Math.floor(delayMs)) },
          () => {
            childSends.delete(sendId);
            self.deliver(childId, event);
          },
          () => {
            if (childSends.get(sendId) === opId) childSends.delete(sendId);
          },
        ),
      );
      childSends.set(sendId, opId);
    },

    hasChildSend: (sendId) => childSends.has(sendId),

    cancelChildSend(sendId) {
      const opId = childSends.get(sendId);
      if (opId !== undefined) {
        childSends.delete(sendId);
        hostOps.cancel(opId);
      }
    },

    /** An event for the instance itself; false (and nothing queued) when it is not JSON. */
    emit(event) {
      let json;
      try {
        json = toJson(event);
      } catch (error) {
        console.error(`event ${event && event.type} was dropped: it is not JSON (${error.message})`);
        return false;
      }
      events.push(json);
      return true;
    },

    /** An event for another actor (the instance's parent, another instance). */
    send(to, event) {
      try {
        sends.push({ to, event: toJson(event) });
      } catch (error) {
        console.error(`event ${event && event.type} was dropped: it is not JSON (${error.message})`);
      }
    },

    ids: () => [...running.keys()],

    take() {
      const taken = { events, sends };
      events = [];
      sends = [];
      return taken;
    },
  };
  return self;
}
