// The official client over HTTP against the quick-start toggle machine (created by smply as
// `toggle`): instances, events, getOrCreate, and the error classes the client maps our
// statuses and codes to.
//
//   STATEWIRE_URL=http://127.0.0.1:PORT STATEWIRE_KEY_ID=sbk_… STATEWIRE_KEY_SECRET=sbsec_… \
//     node --import ./loopback-only.mjs client-http.mjs
import assert from "node:assert/strict";
import { errors } from "@statebacked/client";
import { check, clientFor, finish, thrown } from "./harness.mjs";

const MACHINE = "toggle";
const alice = clientFor("user-123");
const mallory = clientFor("user-666");
let lastTs = 0;

/** Checks the fields of a state the client returns and that `ts` moved forward. */
function expectState(state, value, toggleCount) {
  assert.equal(state.state, value);
  assert.deepEqual(state.publicContext, { toggleCount });
  assert.deepEqual(state.tags, []);
  assert.equal(state.done, false);
  // The client adds the dotted state paths itself.
  assert.deepEqual(state.states, [value]);
  assert.equal(typeof state.ts, "number");
  assert.ok(state.ts > lastTs, `ts ${state.ts} is not after ${lastTs}`);
  lastTs = state.ts;
}

function expectError(error, errorClass, status, code) {
  assert.ok(
    error instanceof errorClass,
    `expected ${errorClass.name}, got ${error?.constructor?.name}: ${error?.message}`,
  );
  assert.equal(error.status, status);
  if (code !== undefined) {
    assert.equal(error.code, code);
  }
}

await check("a user creates the instance named after them", async () => {
  const state = await alice.machineInstances.create(MACHINE, { slug: "user-123" });
  expectState(state, "on", 0);
});

await check("toggling twice reads off with one toggle counted, then on", async () => {
  const off = await alice.machineInstances.sendEvent(MACHINE, "user-123", { event: "toggle" });
  expectState(off, "off", 1);
  const on = await alice.machineInstances.sendEvent(MACHINE, "user-123", {
    event: { type: "toggle" },
  });
  expectState(on, "on", 1);
});

await check("reading the instance answers its latest state", async () => {
  const state = await alice.machineInstances.get(MACHINE, "user-123");
  assert.equal(state.state, "on");
  assert.deepEqual(state.publicContext, { toggleCount: 1 });
  assert.equal(state.ts, lastTs);
});

await check("getOrCreate reads an instance that exists", async () => {
  const state = await alice.machineInstances.getOrCreate(MACHINE, "user-123");
  assert.equal(state.state, "on");
  assert.deepEqual(state.publicContext, { toggleCount: 1 });
});

await check("getOrCreate creates an instance that is missing", async () => {
  const bob = clientFor("user-456");
  const created = await bob.machineInstances.getOrCreate(MACHINE, "user-456", { context: {} });
  assert.equal(created.state, "on");
  assert.deepEqual(created.publicContext, { toggleCount: 0 });
  const again = await bob.machineInstances.get(MACHINE, "user-456");
  assert.equal(again.ts, created.ts);
});

await check("another user is refused by the machine's authorizers", async () => {
  const code = errors.RejectedByMachineAuthorizerError.code;
  assert.equal(code, "rejected-by-machine-authorizer");
  const read = await thrown(() => mallory.machineInstances.get(MACHINE, "user-123"));
  expectError(read, errors.RejectedByMachineAuthorizerError, 403, code);
  const write = await thrown(() =>
    mallory.machineInstances.sendEvent(MACHINE, "user-123", { event: "toggle" }),
  );
  expectError(write, errors.RejectedByMachineAuthorizerError, 403, code);
  const create = await thrown(() =>
    mallory.machineInstances.create(MACHINE, { slug: "not-mallory" }),
  );
  expectError(create, errors.RejectedByMachineAuthorizerError, 403, code);
  const state = await alice.machineInstances.get(MACHINE, "user-123");
  assert.equal(state.ts, lastTs, "the refused event changed nothing");
});

await check("creating an existing instance is a ConflictError", async () => {
  const error = await thrown(() => alice.machineInstances.create(MACHINE, { slug: "user-123" }));
  expectError(error, errors.ConflictError, 409, "invalid-state");
});

await check("a missing instance is a NotFoundError", async () => {
  const ghost = clientFor("ghost");
  const read = await thrown(() => ghost.machineInstances.get(MACHINE, "ghost"));
  expectError(read, errors.NotFoundError, 404);
  const send = await thrown(() =>
    ghost.machineInstances.sendEvent(MACHINE, "ghost", { event: "toggle" }),
  );
  expectError(send, errors.NotFoundError, 404);
});

await check("an unknown machine is a NotFoundError", async () => {
  const error = await thrown(() => alice.machineInstances.create("no-such-machine", { slug: "user-123" }));
  expectError(error, errors.NotFoundError, 404);
});

await check("a token lacking a scope is a MissingScopeError", async () => {
  // A production key may not list machines.
  const error = await thrown(() => alice.machines.list());
  expectError(error, errors.MissingScopeError, 403, "missing-scope");
});

await check("a token signed with the wrong secret is refused with 401", async () => {
  const forged = clientFor("user-123", {
    stateBackedKeyId: process.env.STATEWIRE_KEY_ID,
    stateBackedSecretKey: "sbsec_not-the-secret",
  });
  const error = await thrown(() => forged.machineInstances.get(MACHINE, "user-123"));
  expectError(error, errors.ApiError, 401);
});

finish();
