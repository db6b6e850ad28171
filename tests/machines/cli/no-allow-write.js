import { createMachine } from "npm:xstate";
export const allowRead = () => true;
export default createMachine({ predictableActionArguments: true, initial: "a", states: { a: {} } });
