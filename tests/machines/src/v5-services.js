// XState v5 services and other actors: an invoked promise (started on entry, stopped on exit),
// invoked inline logic, an actor spawned with `spawnChild`, a transient state whose invoke nets
// out, sends to a child with and without delay, and a persistent instance spawned through State
// Backed's runtime hook and then sent to. Nothing runs during a pure step.
import { assign, cancel, fromPromise, sendTo, setup, spawnChild } from "xstate5";

export const allowRead = () => true;

export const allowWrite = () => true;

const never = () => new Promise(() => {});

export default setup({
  actors: {
    work: fromPromise(never),
  },
}).createMachine({
  id: "services",
  initial: "idle",
  context: { public: { level: 3 }, peer: null },
  states: {
    idle: {
      on: {
        work: "working",
        pass: "passing",
        helper: { actions: spawnChild("work", { id: "helper" }) },
        befriend: {
          actions: assign({
            peer: ({ context }) =>
              globalThis.__statebacked_rt.spawn(
                { machineName: "peer", machineInstanceName: "peer-1", machineVersionId: "mv-2" },
                { name: "peer", context: { level: context.public.level } },
              ),
          }),
        },
        wave: { actions: sendTo(({ context }) => context.peer, { type: "wave" }) },
        waveLater: {
          actions: sendTo(({ context }) => context.peer, { type: "wave" }, { delay: 900, id: "w" }),
        },
      },
    },
    working: {
      invoke: [
        { id: "worker", src: "work" },
        { id: "inline", src: fromPromise(never) },
      ],
      on: {
        poke: { actions: sendTo("worker", { type: "poke" }) },
        pokeLater: {
          actions: sendTo("worker", { type: "poke" }, { delay: 700, id: "poke-later" }),
        },
        unpoke: { actions: cancel("poke-later") },
        done: "idle",
      },
    },
    passing: {
      invoke: { id: "blip", src: "work" },
      always: "idle",
    },
  },
});
