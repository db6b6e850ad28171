// The official client's real-time API against the quick-start toggle machine (created by
// smply as `toggle`): a subscriber gets the current state at once, then every change made by
// another client over HTTP, and nothing after unsubscribing; a subscription the machine's
// `allowRead` refuses fails with the client's error class.
//
//   STATEWIRE_URL=http://127.0.0.1:PORT STATEWIRE_KEY_ID=sbk_… STATEWIRE_KEY_SECRET=sbsec_… \
//     node --experimental-websocket --import ./loopback-only.mjs client-ws.mjs
import assert from "node:assert/strict";
import { errors } from "@statebacked/client";
import { check, clientFor, finish } from "./harness.mjs";

const MACHINE = "toggle";
const INSTANCE = "user-ws";
/** How long a pushed update may take to arrive. */
const ARRIVAL_MS = 10_000;
/** How long we listen to be sure that nothing arrives. */
const QUIET_MS = 1_000;

/** Records what one subscription receives and lets a check wait for it. */
class Inbox {
  constructor() {
    this.updates = [];
    this.errors = [];
    this.waiters = [];
  }

  onUpdate = (state) => {
    this.updates.push(state);
    this.wake();
  };

  onError = (error) => {
    this.errors.push(error);
    this.wake();
  };

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves once `ready()` holds, or fails after ARRIVAL_MS saying `what` never came. */
  async until(what, ready) {
    const deadline = Date.now() + ARRIVAL_MS;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${what} did not arrive within ${ARRIVAL_MS} ms`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for an update with this `ts`, and returns it. */
  async update(ts) {
    await this.until(`the update with ts ${ts}`, () => this.updates.some((u) => u.ts === ts));
    return this.updates.find((u) => u.ts === ts);
  }
}

const owner = clientFor(INSTANCE);
const writer = clientFor(INSTANCE);
const stranger = clientFor("user-stranger");
const inbox = new Inbox();
let unsubscribe;
let last;

await check("a subscriber gets the current state right after subscribing", async () => {
  await writer.machineInstances.create(MACHINE, { slug: INSTANCE });
  last = await writer.machineInstances.sendEvent(MACHINE, INSTANCE, { event: "toggle" });
  unsubscribe = owner.machineInstances.subscribe(MACHINE, INSTANCE, inbox.onUpdate, inbox.onError);
  await inbox.until("the first update", () => inbox.updates.length > 0);
  const first = inbox.updates[0];
  assert.equal(first.ts, last.ts);
  assert.equal(first.state, "off");
  assert.deepEqual(first.publicContext, { toggleCount: 1 });
  assert.deepEqual(first.tags, []);
  assert.equal(first.done, false);
  assert.deepEqual(inbox.errors, []);
});

await check("each event sent by another client over HTTP is pushed", async () => {
  for (const [state, toggleCount] of [["on", 1], ["off", 2], ["on", 2]]) {
    const sent = await writer.machineInstances.sendEvent(MACHINE, INSTANCE, { event: "toggle" });
    assert.ok(sent.ts > last.ts, "ts increases");
    const pushed = await inbox.update(sent.ts);
    assert.equal(pushed.state, state);
    assert.deepEqual(pushed.publicContext, { toggleCount });
    assert.deepEqual(pushed.states, [state]);
    last = sent;
  }
  const seen = inbox.updates.map((u) => u.ts);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "updates arrive in order");
});

await check("after unsubscribing no update arrives", async () => {
  unsubscribe();
  const received = inbox.updates.length;
  const sent = await writer.machineInstances.sendEvent(MACHINE, INSTANCE, { event: "toggle" });
  assert.equal(sent.state, "off");
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  assert.equal(inbox.updates.length, received);
});

await check("a subscription refused by allowRead fails with the client's error", async () => {
  const refused = new Inbox();
  const stop = stranger.machineInstances.subscribe(
    MACHINE,
    INSTANCE,
    refused.onUpdate,
    refused.onError,
  );
  try {
    await refused.until("the subscription error", () => refused.errors.length > 0);
    const [error] = refused.errors;
    assert.ok(
      error instanceof errors.RejectedByMachineAuthorizerError,
      `expected RejectedByMachineAuthorizerError, got ${error?.constructor?.name}`,
    );
    assert.equal(error.code, "rejected-by-machine-authorizer");
    assert.equal(error.status, 403);
    await writer.machineInstances.sendEvent(MACHINE, INSTANCE, { event: "toggle" });
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    assert.deepEqual(refused.updates, [], "nothing is pushed to a refused subscriber");
  } finally {
    stop();
  }
});

await check("a subscription to a missing instance is a NotFoundError", async () => {
  const missing = new Inbox();
  const stop = owner.machineInstances.subscribe(
    MACHINE,
    "user-nobody",
    missing.onUpdate,
    missing.onError,
  );
  try {
    await missing.until("the subscription error", () => missing.errors.length > 0);
    assert.ok(missing.errors[0] instanceof errors.NotFoundError, String(missing.errors[0]));
    assert.deepEqual(missing.updates, []);
  } finally {
    stop();
  }
});

finish();
// The client keeps its socket's reconnect and ping timers alive; everything is done.
process.exit();
