// The quick-start machine: a switch that counts how often it was turned off.
//
// Each user gets their own instance, named after their user id: both authorizers let a
// caller in only when the instance name equals the `sub` of their auth context.
import { assign, createMachine } from "xstate";
import type { AllowRead, AllowWrite } from "@statebacked/machine";

type Context = {
  public: { toggleCount: number };
};

export const allowRead: AllowRead = ({ machineInstanceName, authContext }) =>
  machineInstanceName === authContext.sub;

export const allowWrite: AllowWrite = ({ machineInstanceName, authContext }) =>
  machineInstanceName === authContext.sub;

export default createMachine<Context>({
  predictableActionArguments: true,
  initial: "on",
  context: { public: { toggleCount: 0 } },
  states: {
    on: {
      on: {
        toggle: {
          target: "off",
          actions: assign({
            public: (context) => ({ toggleCount: context.public.toggleCount + 1 }),
          }),
        },
      },
    },
    off: {
      on: { toggle: "on" },
    },
  },
});
