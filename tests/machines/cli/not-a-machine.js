export const allowRead = () => true;
export const allowWrite = () => true;
export default { initial: "a", states: { a: {} } };
