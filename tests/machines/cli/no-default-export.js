export const allowRead = () => true;
export const allowWrite = () => true;
export const machine = { initial: "a" };
