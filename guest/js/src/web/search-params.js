// `URLSearchParams`: a list of name-value pairs in application/x-www-form-urlencoded form.
// A `URL`'s `searchParams` is linked to it: changing one changes the other.
import { percentDecode, percentEncode } from './url-parse.js';

/** Everything but ASCII alphanumerics and `*-._` is escaped; spaces become `+` afterwards. */
const FORM_SET = (c) => c !== 0x20 && !/[0-9A-Za-z*\-._]/.test(String.fromCharCode(c));

/** Internal state per instance: the list and, when linked to a URL, who to tell of changes. */
const internals = new WeakMap();

export function parseForm(text) {
  const list = [];
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq === -1 ? piece : piece.slice(0, eq);
    const value = eq === -1 ? '' : piece.slice(eq + 1);
    list.push([percentDecode(name.replace(/\+/g, ' ')), percentDecode(value.replace(/\+/g, ' '))]);
  }
  return list;
}

export function serializeForm(list) {
  const encode = (text) => percentEncode(text, FORM_SET).replace(/ /g, '+');
  return list.map(([name, value]) => `${encode(name)}=${encode(value)}`).join('&');
}

/** A `URLSearchParams` whose changes are reported to `onChange(serialized)`. */
export function linkedParams(query, onChange) {
  const params = new URLSearchParams(query);
  internals.get(params).onChange = onChange;
  return params;
}

/** Replaces the list of linked params after their URL's query changed. */
export function resetParams(params, query) {
  internals.get(params).list = query ? parseForm(query) : [];
}

function stateOf(params) {
  const state = internals.get(params);
  if (!state) throw new TypeError('Illegal invocation: not a URLSearchParams');
  return state;
}

function changed(state) {
  if (state.onChange) state.onChange(serializeForm(state.list));
}

export class URLSearchParams {
  constructor(init = '') {
    let list = [];
    if (init instanceof URLSearchParams) {
      list = stateOf(init).list.map(([n, v]) => [n, v]);
    } else if (init !== null && typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const items = [...pair];
        if (items.length !== 2) {
          throw new TypeError('URLSearchParams: each pair must have exactly two items');
        }
        list.push([String(items[0]), String(items[1])]);
      }
    } else if (init !== null && typeof init === 'object') {
      for (const name of Object.keys(init)) list.push([name, String(init[name])]);
    } else {
      const text = String(init);
      list = parseForm(text.startsWith('?') ? text.slice(1) : text);
    }
    internals.set(this, { list, onChange: null });
  }

  get size() {
    return stateOf(this).list.length;
  }

  append(name, value) {
    const state = stateOf(this);
    state.list.push([String(name), String(value)]);
    changed(state);
  }

  delete(name, value) {
    const state = stateOf(this);
    const key = String(name);
    const only = value === undefined ? null : String(value);
    state.list = state.list.filter(([n, v]) => !(n === key && (only === null || v === only)));
    changed(state);
  }

  get(name) {
    const key = String(name);
    const found = stateOf(this).list.find(([n]) => n === key);
    return found ? found[1] : null;
  }

  getAll(name) {
    const key = String(name);
    return stateOf(this).list.filter(([n]) => n === key).map(([, v]) => v);
  }

  has(name, value) {
    const key = String(name);
    const only = value === undefined ? null : String(value);
    return stateOf(this).list.some(([n, v]) => n === key && (only === null || v === only));
  }

  /** Sets the first pair named `name` and removes the others, or appends one. */
  set(name, value) {
    const state = stateOf(this);
    const key = String(name);
    const text = String(value);
    const index = state.list.findIndex(([n]) => n === key);
    if (index === -1) {
      state.list.push([key, text]);
    } else {
      state.list[index][1] = text;
      state.list = state.list.filter(([n], i) => i <= index || n !== key);
    }
    changed(state);
  }

  /** Stable sort by name, comparing UTF-16 code units. */
  sort() {
    const state = stateOf(this);
    state.list = state.list
      .map((pair, index) => ({ pair, index }))
      .sort((a, b) => (a.pair[0] < b.pair[0] ? -1 : a.pair[0] > b.pair[0] ? 1 : a.index - b.index))
      .map(({ pair }) => pair);
    changed(state);
  }

  forEach(callback, thisArg) {
    for (const [name, value] of stateOf(this).list) callback.call(thisArg, value, name, this);
  }

  keys() {
    return stateOf(this).list.map(([n]) => n)[Symbol.iterator]();
  }

  values() {
    return stateOf(this).list.map(([, v]) => v)[Symbol.iterator]();
  }

  entries() {
    return stateOf(this).list.map(([n, v]) => [n, v])[Symbol.iterator]();
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  toString() {
    return serializeForm(stateOf(this).list);
  }

  get [Symbol.toStringTag]() {
    return 'URLSearchParams';
  }
}
