// Runs every machine in src/ with the real xstate packages under Node and writes what each
// scenario step must produce. The Rust golden test feeds the same scenarios through the
// statewire runtime and compares field by field.
//
//   node expected.mjs [OUT_DIR]   (default: <repo>/target/machines; writes OUT_DIR/expected.json)
//
// Semantics pinned here, shared with the runtime:
// - the context given at creation is shallow-merged over the machine's initial context before
//   the machine starts, so entry actions and eventless transitions already see it;
// - v4 steps come from `machine.transition(state, event)` starting at the merged machine's
//   `initialState`; v5 steps from `initialTransition` / `transition` (the pure API);
// - an event given as a string is the event object `{type: string}`;
// - `timers` lists the delayed sends/raises and cancels of a step, in XState's order.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import * as xstate4 from "xstate";
import { SimulatedClock as SimulatedClock4 } from "xstate/lib/SimulatedClock.js";
import * as xstate5 from "xstate5";
import { OWN_XSTATE } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const outDir = resolve(process.argv[2] ?? join(repo, "target", "machines"));

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const plain = (value) => JSON.parse(JSON.stringify(value));
const toEvent = (event) => (typeof event === "string" ? { type: event } : event);

function xstateMajor(machine) {
  // v5 machines carry `__xstatenode` too, so test for v5 first.
  if (machine instanceof xstate5.StateMachine) return 5;
  if (machine && machine.__xstatenode === true) return 4;
  throw new Error("default export is neither an XState v4 nor an XState v5 machine");
}

/** v4: delayed `xstate.send`/`xstate.raise` and `xstate.cancel` actions. */
function timersV4(actions) {
  const timers = [];
  for (const action of actions) {
    const delayed = action.type === "xstate.send" || action.type === "xstate.raise";
    if (delayed && typeof action.delay === "number") {
      timers.push({ op: "schedule", id: action.id, delayMs: action.delay, event: action.event });
    } else if (action.type === "xstate.cancel") {
      timers.push({ op: "cancel", id: action.sendId });
    }
  }
  return plain(timers);
}

/** v5: delayed `xstate.raise`/`xstate.sendTo` and `xstate.cancel` executable actions. */
function timersV5(actions) {
  const timers = [];
  for (const action of actions) {
    const params = action.params ?? {};
    const delayed = action.type === "xstate.raise" || action.type === "xstate.sendTo";
    if (delayed && typeof params.delay === "number") {
      timers.push({ op: "schedule", id: params.id, delayMs: params.delay, event: params.event });
    } else if (action.type === "xstate.cancel") {
      timers.push({ op: "cancel", id: params.sendId });
    }
  }
  return plain(timers);
}

function runV4(machine, context, events) {
  const merged = machine.withContext({ ...machine.context, ...context });
  const view = (event, state) =>
    plain({
      event,
      state: state.value,
      context: state.context,
      tags: [...state.tags],
      done: state.done,
      timers: timersV4(state.actions),
    });
  let state = merged.initialState;
  const steps = [view(null, state)];
  for (const event of events) {
    state = merged.transition(state, event);
    steps.push(view(event, state));
  }
  crossCheck(steps, interpretV4(merged, events));
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
    const { event, timers, ...pure } = step;
    const actual = plain(interpreted[i]);
    if (!isDeepStrictEqual(pure, actual)) {
      throw new Error(
        `pure transition and interpreter disagree after ${JSON.stringify(event)}:\n` +
          `  pure:        ${JSON.stringify(pure)}\n  interpreter: ${JSON.stringify(actual)}`,
      );
    }
  });
}

function runV5(machine, context, events) {
  const initial = machine.config.context;
  const mergedContext =
    typeof initial === "function"
      ? (args) => ({ ...initial(args), ...context })
      : { ...initial, ...context };
  const merged = xstate5.createMachine(
    { ...machine.config, context: mergedContext },
    machine.implementations,
  );
  const view = (event, [snapshot, actions]) =>
    plain({
      event,
      state: snapshot.value,
      context: snapshot.context,
      tags: [...snapshot.tags],
      done: snapshot.status === "done",
      timers: timersV5(actions),
    });
  let result = xstate5.initialTransition(merged);
  const steps = [view(null, result)];
  for (const event of events) {
    result = xstate5.transition(merged, result[0], event);
    steps.push(view(event, result));
  }
  crossCheck(steps, interpretV5(merged, events));
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
  const module = await import(pathToFileURL(join(here, "src", `${name}.js`)).href);
  const machine = module.default;
  const major = xstateMajor(machine);
  const { scenarios } = readJson(join(here, "scenarios", `${name}.json`));
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
      const steps = run(machine, context, events);
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
