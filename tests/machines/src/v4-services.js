// Services and other actors: an invoked promise (started on entry, stopped on exit), a
// transient state whose invoke nets out, sends to a child with and without delay, a persistent
// instance spawned through State Backed's runtime hook and then sent to, and an invoke whose
// source is a persistent instance. Nothing runs during a pure step: the promise creator is
// never called here.
import { actions, assign, createMachine, send } from "xstate";

const { cancel } = actions;

export const allowRead = () => true;

export const allowWrite = () => true;

export default createMachine(
  {
    id: "services",
    predictableActionArguments: true,
    initial: "idle",
    context: { public: { level: 3 }, peer: null },
    states: {
      idle: {
        on: {
          work: "working",
          pass: "passing",
          befriend: {
            actions: assign({
              peer: (context) =>
                globalThis.__statebacked_rt.spawn(
                  { machineName: "peer", machineInstanceName: "peer-1" },
                  { name: "peer", context: { level: context.public.level } },
                ),
            }),
          },
          wave: {
            actions: send({ type: "wave" }, { to: (context) => context.peer }),
          },
          waveLater: {
            actions: send({ type: "wave" }, { to: (context) => context.peer, delay: 900, id: "w" }),
          },
          visit: "visiting",
        },
      },
      working: {
        invoke: { id: "worker", src: "work" },
        on: {
          poke: { actions: send({ type: "poke" }, { to: "worker" }) },
          pokeLater: {
            actions: send({ type: "poke" }, { to: "worker", delay: 700, id: "poke-later" }),
          },
          unpoke: { actions: cancel("poke-later") },
          done: "idle",
        },
      },
      passing: {
        invoke: { id: "blip", src: "work" },
        always: "idle",
      },
      visiting: {
        invoke: {
          id: "buddy",
          src: {
            type: "statebacked.invoke",
            machineName: "buddy",
            machineInstanceName: "buddy-1",
            machineVersionId: "mv-7",
          },
          data: { level: (context) => context.public.level, fixed: "yes" },
        },
        on: { home: "idle" },
      },
    },
  },
  {
    services: {
      work: () => new Promise(() => {}),
    },
  },
);
