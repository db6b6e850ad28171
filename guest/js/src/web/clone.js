// `structuredClone` for the values machines pass around: primitives (BigInt included), plain
// objects and arrays, Date, RegExp, Map, Set, ArrayBuffer, typed arrays, DataView, errors and
// the boxed primitives, with shared references and cycles kept. Other objects are cloned as
// plain objects of their own enumerable properties, as the algorithm does for ordinary
// objects. Functions and symbols throw a DataCloneError. The `transfer` option is refused.

const ERROR_TYPES = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

function dataCloneError(message) {
  return typeof DOMException === 'function'
    ? new DOMException(message, 'DataCloneError')
    : Object.assign(new Error(message), { name: 'DataCloneError' });
}

export function structuredClone(value, options) {
  if (options && options.transfer && options.transfer.length > 0) {
    throw dataCloneError('structuredClone: transferring is not supported');
  }
  return cloneInto(value, new Map());
}

function cloneInto(value, seen) {
  const type = typeof value;
  if (type === 'function') throw dataCloneError(`${value.name || 'function'} could not be cloned`);
  if (type === 'symbol') throw dataCloneError(`${String(value)} could not be cloned`);
  if (value === null || type !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  const remember = (copy) => {
    seen.set(value, copy);
    return copy;
  };
  if (value instanceof Date) return remember(new Date(value.getTime()));
  if (value instanceof RegExp) return remember(new RegExp(value.source, value.flags));
  if (value instanceof Boolean || value instanceof Number || value instanceof String) {
    return remember(Object(value.valueOf()));
  }
  if (value instanceof ArrayBuffer) return remember(value.slice(0));
  if (value instanceof DataView) {
    const buffer = cloneInto(value.buffer, seen);
    return remember(new DataView(buffer, value.byteOffset, value.byteLength));
  }
  if (ArrayBuffer.isView(value)) {
    const buffer = cloneInto(value.buffer, seen);
    return remember(new value.constructor(buffer, value.byteOffset, value.length));
  }
  if (value instanceof Map) {
    const copy = remember(new Map());
    for (const [k, v] of value) copy.set(cloneInto(k, seen), cloneInto(v, seen));
    return copy;
  }
  if (value instanceof Set) {
    const copy = remember(new Set());
    for (const v of value) copy.add(cloneInto(v, seen));
    return copy;
  }
  if (value instanceof Error) {
    const Type = ERROR_TYPES[value.name] || Error;
    const copy = remember(new Type(value.message));
    if (value.name !== copy.name) copy.name = String(value.name);
    if ('cause' in value) copy.cause = cloneInto(value.cause, seen);
    return copy;
  }
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) {
    throw dataCloneError(`${Object.prototype.toString.call(value)} could not be cloned`);
  }
  if (Array.isArray(value)) {
    const copy = remember(new Array(value.length));
    for (const key of Object.keys(value)) copy[key] = cloneInto(value[key], seen);
    return copy;
  }
  const copy = remember({});
  for (const key of Object.keys(value)) copy[key] = cloneInto(value[key], seen);
  return copy;
}
