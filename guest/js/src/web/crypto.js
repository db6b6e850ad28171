// `crypto.getRandomValues` and `crypto.randomUUID`, over a source of random bytes that the
// engine provides (WASI `random_get`, asked afresh on every call). No pseudo-random state is
// kept in the guest's memory, so guests that the host copies from one loaded template do not
// repeat each other's values. `crypto.subtle` is not provided.

/** Most bytes one `getRandomValues` call may fill, as in browsers. */
const MAX_RANDOM_BYTES = 65536;

const INTEGER_ARRAYS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
];

/** `randomBytes(n)` returns an ArrayBuffer of `n` random bytes. */
export function createCrypto(randomBytes) {
  const domError = (message, name) =>
    typeof DOMException === 'function' ? new DOMException(message, name) : new TypeError(message);

  function getRandomValues(array) {
    const kind = ArrayBuffer.isView(array) && !(array instanceof DataView) ? array.constructor.name : null;
    if (!INTEGER_ARRAYS.includes(kind)) {
      throw domError('getRandomValues needs an integer typed array', 'TypeMismatchError');
    }
    if (array.byteLength > MAX_RANDOM_BYTES) {
      throw domError(`getRandomValues can fill at most ${MAX_RANDOM_BYTES} bytes`, 'QuotaExceededError');
    }
    const bytes = new Uint8Array(randomBytes(array.byteLength));
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
    return array;
  }

  function randomUUID() {
    const bytes = new Uint8Array(randomBytes(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  return { getRandomValues, randomUUID };
}
