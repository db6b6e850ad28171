// Making live values JSON for the host: events from running services, their results and errors.

/** `{name, message}` for anything error-like; other values as JSON, or their string form. */
export function errorJson(error) {
  if (isErrorLike(error)) return { name: String(error.name), message: String(error.message) };
  try {
    const json = toJson(error);
    return json === undefined ? null : json;
  } catch {
    return safeString(error);
  }
}

/**
 * A JSON copy of `value`, with errors inside it as `{name, message}`; `undefined` for values
 * JSON leaves out. Throws (a TypeError) for BigInts and cycles.
 */
export function toJson(value) {
  const text = JSON.stringify(value, (_key, v) => (isErrorLike(v) ? errorJson(v) : v));
  return text === undefined ? undefined : JSON.parse(text);
}

function isErrorLike(value) {
  return (
    value instanceof Error ||
    (value !== null &&
      typeof value === 'object' &&
      typeof value.name === 'string' &&
      typeof value.message === 'string' &&
      !isPlain(value))
  );
}

function isPlain(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return '[value]';
  }
}
