// `Headers`: names are case-insensitive and kept lowercase; values are trimmed of HTTP
// whitespace; iteration is sorted by name, with values of one name joined by ", " (except
// `set-cookie`, listed once per value), as the Fetch Standard says.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function checkedName(name) {
  const text = String(name);
  if (!TOKEN.test(text)) throw new TypeError(`Headers: invalid header name "${text}"`);
  return text.toLowerCase();
}

function checkedValue(value) {
  const text = String(value).replace(EDGE_WHITESPACE, '');
  if (/[\0\r\n]/.test(text)) throw new TypeError('Headers: invalid header value');
  return text;
}

export class Headers {
  #values = new Map();

  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [name, list] of init.#values) this.#values.set(name, [...list]);
    } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const items = [...pair];
        if (items.length !== 2) throw new TypeError('Headers: each pair must have exactly two items');
        this.append(items[0], items[1]);
      }
    } else if (typeof init === 'object') {
      for (const name of Object.keys(init)) this.append(name, init[name]);
    } else {
      throw new TypeError('Headers: init must be an object, an iterable of pairs or Headers');
    }
  }

  append(name, value) {
    const key = checkedName(name);
    const list = this.#values.get(key);
    if (list) list.push(checkedValue(value));
    else this.#values.set(key, [checkedValue(value)]);
  }

  delete(name) {
    this.#values.delete(checkedName(name));
  }

  get(name) {
    const list = this.#values.get(checkedName(name));
    return list ? list.join(', ') : null;
  }

  getSetCookie() {
    return [...(this.#values.get('set-cookie') || [])];
  }

  has(name) {
    return this.#values.has(checkedName(name));
  }

  set(name, value) {
    this.#values.set(checkedName(name), [checkedValue(value)]);
  }

  forEach(callback, thisArg) {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }

  *entries() {
    for (const name of [...this.#values.keys()].sort()) {
      const list = this.#values.get(name);
      if (name === 'set-cookie') {
        for (const value of list) yield [name, value];
      } else {
        yield [name, list.join(', ')];
      }
    }
  }

  *keys() {
    for (const [name] of this.entries()) yield name;
  }

  *values() {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  get [Symbol.toStringTag]() {
    return 'Headers';
  }
}

/** Headers as one JSON object (what the host gets): `set-cookie` values joined like others. */
export function headersObject(headers) {
  const out = {};
  for (const [name, value] of headers) {
    out[name] = Object.hasOwn(out, name) ? `${out[name]}, ${value}` : value;
  }
  return out;
}
