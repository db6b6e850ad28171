// Error kinds of the machine ABI and how a thrown value is classified into one.

/** An error whose ABI kind is known where it is thrown. */
export class GuestError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'GuestError';
    this.kind = kind;
  }
}

export const invalidBundle = (message) => new GuestError('invalid-bundle', message);
export const badInput = (message) => new GuestError('bad-input', message);

/**
 * QuickJS reports an exhausted heap as `InternalError: out of memory`, or throws `null` when it
 * cannot even allocate that error. (A machine that throws `null` itself is taken for the same.)
 */
export function isOutOfMemory(error) {
  if (error === null) return true;
  return (
    typeof error === 'object' &&
    error.name === 'InternalError' &&
    error.message === 'out of memory'
  );
}

/** `{kind, message}` for a thrown value; `fallbackKind` when nothing more specific applies. */
export function classify(error, fallbackKind) {
  if (error instanceof GuestError) {
    return { kind: error.kind, message: error.message };
  }
  if (isOutOfMemory(error)) {
    return { kind: 'out-of-memory', message: 'the machine ran out of heap memory' };
  }
  return { kind: fallbackKind, message: describe(error) };
}

/** A one-line description of any thrown value. Never throws. */
export function describe(error) {
  try {
    if (error !== null && typeof error === 'object' && typeof error.message === 'string') {
      const name = typeof error.name === 'string' && error.name ? error.name : 'Error';
      return `${name}: ${error.message}`;
    }
    return `thrown value: ${String(error)}`;
  } catch {
    return 'thrown value that cannot be described';
  }
}
