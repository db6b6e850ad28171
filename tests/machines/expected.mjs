// Runs every machine in src/ with the real xstate packages under Node and writes what each
// scenario step must produce. The Rust golden test feeds the same scenarios through the
// statewire runtime and compares field by field.
//
//   node expected.mjs [OUT_DIR]   (default: <repo>/target/machines; writes OUT_DIR/expected.json)
//
// It runs the bundles build.mjs left in OUT_DIR (not the sources), so Node executes exactly the
// code the runtime gets: inline actions named by their source text read the same on both sides.
//
// Semantics pinned here, shared with the runtime:
// - the context given at creation is shallow-merged over the machine's initial context before
//   the machine starts, so entry actions and eventless transitions already see it;
// - v4 steps come from `machine.transition(state, event)` starting at the merged machine's
//   `initialState`; v5 steps are computed as `initialTransition` / `transition` (the pure API)
//   compute them, with a stand-in parent as in the runtime (so `sendParent` has somewhere to
//   go), and checked against those functions;
// - an event given as a string is the event object `{type: string}`;
// - `effects` is the step's whole normalized effect list (effects.mjs, after docs/machine-abi.md);
//   a value XState draws at random is `{"$any": "string"}`;
// - a scenario file may say `"pureOnly": "<why>"`: its machine addresses actors that do not exist
//   under Node, so it is not also run through the interpreter.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { register } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import * as xstate4 from "xstate";
import { SimulatedClock as SimulatedClock4 } from "xstate/lib/SimulatedClock.js";
import * as xstate5 from "xstate5";
import { OWN_XSTATE } from "./build.mjs";
import { effectsV4, effectsV5, recordingSpawns, SPAWNED } from "./effects.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const outDir = resolve(process.argv[2] ?? join(repo, "target", "machines"));

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const plain = (value) => JSON.parse(JSON.stringify(value));
const toEvent = (event) => (typeof event === "string" ? { type: event } : event);

register(new URL("./bundle-hooks.mjs", import.meta.url), {
  data: { "npm:xstate": import.meta.resolve("xstate"), "npm:xstate@5": import.meta.resolve("xstate5") },
});

function xstateMajor(machine) {
  // v5 machines carry `__xstatenode` too, so test for v5 first.
  if (machine instanceof xstate5.StateMachine) return 5;
  if (machine && machine.__xstatenode === true) return 4;
  throw new Error("default export is neither an XState v4 nor an XState v5 machine");
}

function runV4(machine, context, events, pureOnly) {
  const merged = machine.withContext({ ...machine.context, ...context });
  const view = (event, state, spawned) =>
    plain({
      event,
      state: state.value,
      context: state.context,
      tags: [...state.tags],
      done: state.done,
      effects: effectsV4(state, spawned),
    });
  const step = (compute) => {
    const spawned = [];
    return [recordingSpawns(spawned, compute), spawned];
  };
  let [state, spawned] = step(() => merged.initialState);
  const steps = [view(null, state, spawned)];
  for (const event of events) {
    [state, spawned] = step(() => merged.transition(state, event));
    steps.push(view(event, state, spawned));
  }
  if (!pureOnly) crossCheck(steps, interpretV4(merged, events));
  return steps;
}

/** The same events through v4's interpreter, on a simulated clock so no timer fires. */
function interpretV4(machine, events) {
  const service = xstate4.interpret(machine, { clock: new SimulatedClock4() }).start();
  const seen = [service.state];
  for (const event of events) {
    // A service that reached a final state has stopped and ignores events.
    if (service.status !== xstate4.InterpreterStatus.Stopped) {
      service.send(event);
    }
    seen.push(service.state);
  }
  service.stop();
  return seen.map((state) => ({
    state: state.value,
    context: state.context,
    tags: [...state.tags],
    done: state.done,
  }));
}

/** The same events through a v5 actor, on a simulated clock so no timer fires. */
function interpretV5(machine, events) {
  const actor = xstate5.createActor(machine, { clock: new xstate5.SimulatedClock() }).start();
  const seen = [actor.getSnapshot()];
  for (const event of events) {
    actor.send(event);
    seen.push(actor.getSnapshot());
  }
  actor.stop();
  return seen.map((snapshot) => ({
    state: snapshot.value,
    context: snapshot.context,
    tags: [...snapshot.tags],
    done: snapshot.status === "done",
  }));
}

/** The pure transitions and the interpreter must agree, or the expectations mean nothing. */
function crossCheck(steps, interpreted) {
  steps.forEach((step, i) => {
    const { event, effects, ...pure } = step;
    const actual = plain(interpreted[i]);
    if (!isDeepStrictEqual(pure, actual)) {
      throw new Error(
        `pure transition and interpreter disagree after ${JSON.stringify(event)}:\n` +
          `  pure:        ${JSON.stringify(pure)}\n  interpreter: ${JSON.stringify(actual)}`,
      );
    }
  });
}

/** What the runtime's XState 5 actor has for a parent; `sendParent` resolves to it. */
const STAND_IN_PARENT = Object.freeze({ id: "parent", sessionId: "parent", send() {}, _send() {} });

/**
 * One XState 5 step as `initialTransition` / `transition` compute it (an actor that is never
 * started, a scope whose executor only collects), but with a parent, and with persistent spawns
 * recorded where they happen among the collected actions. `snapshot` null is the initial step.
 */
function stepV5(machine, snapshot, event) {
  const self = xstate5.createActor(machine);
  self._parent = STAND_IN_PARENT;
  const collected = [];
  const scope = {
    self,
    defer: () => {},
    id: "",
    logger: () => {},
    sessionId: "",
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action) => collected.push(action),
  };
  const spawns = { push: (effect) => collected.push({ [SPAWNED]: effect }) };
  const next = recordingSpawns(spawns, () =>
    snapshot === null
      ? machine.getInitialSnapshot(scope)
      : machine.transition(snapshot, event, scope),
  );
  const effects = effectsV5(collected);
  checkAgainstPublicApi(machine, snapshot, event, [next, effects]);
  return [next, effects];
}

/**
 * The same step through xstate's own `initialTransition` / `transition` must give the same
 * snapshot and effects (less persistent spawns, which only the step above records). XState's
 * own functions have no parent to offer, so a step that sends to the parent throws there.
 */
function checkAgainstPublicApi(machine, snapshot, event, [next, effects]) {
  let result;
  try {
    result =
      snapshot === null
        ? xstate5.initialTransition(machine)
        : xstate5.transition(machine, snapshot, event);
  } catch (error) {
    const toParent = effects.some((effect) => effect.to?.kind === "parent");
    if (toParent && /#_parent/.test(String(error))) return;
    throw error;
  }
  const [theirs, actions] = result;
  const mine = {
    value: next.value,
    context: next.context,
    status: next.status,
    effects: effects.filter((effect) => effect.type !== "spawn-instance"),
  };
  const public_ = {
    value: theirs.value,
    context: theirs.context,
    status: theirs.status,
    effects: effectsV5(actions),
  };
  if (!isDeepStrictEqual(plain(mine), plain(public_))) {
    throw new Error(
      `xstate's transition and the oracle's step disagree after ${JSON.stringify(event)}:\n` +
        `  transition: ${JSON.stringify(public_)}\n  oracle:     ${JSON.stringify(mine)}`,
    );
  }
}

function runV5(machine, context, events, pureOnly) {
  const initial = machine.config.context;
  const mergedContext =
    typeof initial === "function"
      ? (args) => ({ ...initial(args), ...context })
      : { ...initial, ...context };
  const merged = xstate5.createMachine(
    { ...machine.config, context: mergedContext },
    machine.implementations,
  );
  const view = (event, [snapshot, effects]) =>
    plain({
      event,
      state: snapshot.value,
      context: snapshot.context,
      tags: [...snapshot.tags],
      done: snapshot.status === "done",
      effects,
    });
  let result = stepV5(merged, null, null);
  const steps = [view(null, result)];
  for (const event of events) {
    result = stepV5(merged, result[0], event);
    steps.push(view(event, result));
  }
  if (!pureOnly) crossCheck(steps, interpretV5(merged, events));
  return steps;
}

function probe(module, scenario, steps, spec) {
  const machineInstanceName = spec.instance ?? scenario.instance;
  let op;
  let args;
  if (spec.allowRead) {
    const step = steps[spec.allowRead.at];
    op = "allowRead";
    args = {
      machineInstanceName,
      state: step.state,
      context: step.context,
      authContext: spec.allowRead.authContext,
    };
  } else if (spec.allowWrite) {
    const step = steps[spec.allowWrite.at];
    op = "allowWrite";
    args = {
      type: "event",
      machineInstanceName,
      state: step.state,
      context: step.context,
      event: toEvent(spec.allowWrite.event),
      authContext: spec.allowWrite.authContext,
    };
  } else if (spec.allowInit) {
    op = "allowWrite";
    args = {
      type: "initialization",
      machineInstanceName,
      context: spec.allowInit.context,
      authContext: spec.allowInit.authContext,
    };
  } else {
    throw new Error(`unknown probe ${JSON.stringify(spec)}`);
  }
  args = plain(args);
  const allowed = module[op](structuredClone(args));
  if (typeof allowed !== "boolean") {
    throw new Error(`${op} returned ${typeof allowed}, not a boolean`);
  }
  return { op, args, allowed };
}

async function expectMachine(name) {
  const module = await import(pathToFileURL(join(outDir, `${name}.js`)).href);
  const machine = module.default;
  const major = xstateMajor(machine);
  const { scenarios, pureOnly } = readJson(join(here, "scenarios", `${name}.json`));
  const run = major === 4 ? runV4 : runV5;
  return {
    name,
    xstateMajor: major,
    bundles: [`${name}.js`, ...(OWN_XSTATE.includes(name) ? [`${name}.bundled.js`] : [])],
    exports: Object.keys(module)
      .filter((key) => key !== "default")
      .sort(),
    scenarios: scenarios.map((scenario) => {
      const context = scenario.context ?? {};
      const events = (scenario.events ?? []).map(toEvent);
      const steps = run(machine, context, events, pureOnly);
      return {
        name: scenario.name,
        instance: scenario.instance,
        context,
        authContext: scenario.authContext ?? {},
        steps,
        probes: (scenario.probes ?? []).map((spec) => probe(module, scenario, steps, spec)),
      };
    }),
  };
}

const versionOf = (pkg) => readJson(join(here, "node_modules", pkg, "package.json")).version;

const names = readdirSync(join(here, "src"))
  .filter((f) => f.endsWith(".js"))
  .map((f) => basename(f, ".js"))
  .sort();
const machines = [];
for (const name of names) {
  try {
    machines.push(await expectMachine(name));
  } catch (error) {
    console.error(`${name}: ${error.stack ?? error}`);
    process.exit(1);
  }
}
mkdirSync(outDir, { recursive: true });
const expected = { xstate: { 4: versionOf("xstate"), 5: versionOf("xstate5") }, machines };
writeFileSync(join(outDir, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
const steps = machines.flatMap((m) => m.scenarios).reduce((n, s) => n + s.steps.length, 0);
console.log(`wrote expectations for ${machines.length} machines (${steps} steps) to ${outDir}`);
