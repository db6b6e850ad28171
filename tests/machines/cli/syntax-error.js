import { createMachine } from "npm:xstate";
export const allowRead = () => true;
export const allowWrite = () => true;
export default createMachine({ initial: "a", states: { a: {} } ;
