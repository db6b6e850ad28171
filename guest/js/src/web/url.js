// `URL`, over the parser in url-parse.js (which says what is supported). Setters follow the
// URL Standard for the common cases: a value that does not parse leaves the URL unchanged,
// except `href`, which throws.
import { linkedParams, resetParams } from './search-params.js';
import {
  FRAGMENT_SET,
  USERINFO_SET,
  hostAndPort,
  isSpecial,
  parseHost,
  parsePath,
  parsePort,
  parseURL,
  percentEncode,
  querySet,
  serializePath,
  serializeURL,
} from './url-parse.js';

/** The parsed record of a URL object; set when the class below is defined. */
let readRecord;

export class URL {
  #record;
  /** Made on first use: most URLs never have their params read. */
  #params = null;

  constructor(url, base) {
    const baseRecord = base === undefined ? null : recordOf(base);
    this.#record = parseURL(url, baseRecord);
  }

  static canParse(url, base) {
    try {
      parseURL(url, base === undefined ? null : recordOf(base));
      return true;
    } catch {
      return false;
    }
  }

  static parse(url, base) {
    try {
      return new URL(url, base);
    } catch {
      return null;
    }
  }

  get href() {
    return serializeURL(this.#record);
  }

  set href(value) {
    this.#record = parseURL(value);
    if (this.#params) resetParams(this.#params, this.#record.query);
  }

  get origin() {
    const { scheme, host, port, path } = this.#record;
    if (scheme === 'blob' && typeof path === 'string') {
      const inner = URL.parse(path);
      return inner && /^https?:$/.test(inner.protocol) ? inner.origin : 'null';
    }
    if (!isSpecial(scheme)) return 'null';
    return `${scheme}://${host}${port === null ? '' : `:${port}`}`;
  }

  get protocol() {
    return `${this.#record.scheme}:`;
  }

  /** Only between schemes of the same kind (special or not), as the standard allows. */
  set protocol(value) {
    const match = /^([A-Za-z][A-Za-z0-9+.-]*)/.exec(String(value));
    if (!match) return;
    const scheme = match[1].toLowerCase();
    if (scheme === 'file' || isSpecial(scheme) !== isSpecial(this.#record.scheme)) return;
    const { port } = this.#record;
    this.#record.scheme = scheme;
    if (port !== null) this.#record.port = parsePort(String(port), scheme, value);
  }

  get username() {
    return this.#record.username;
  }

  set username(value) {
    if (this.#credentialsFixed()) return;
    this.#record.username = percentEncode(String(value), USERINFO_SET);
  }

  get password() {
    return this.#record.password;
  }

  set password(value) {
    if (this.#credentialsFixed()) return;
    this.#record.password = percentEncode(String(value), USERINFO_SET);
  }

  get host() {
    const { host, port } = this.#record;
    if (host === null) return '';
    return port === null ? host : `${host}:${port}`;
  }

  set host(value) {
    if (typeof this.#record.path === 'string') return;
    const text = String(value).split(/[/?#\\]/)[0];
    try {
      const { host, port } = hostAndPort(text, this.#record.scheme, value);
      if (host === '' && isSpecial(this.#record.scheme)) return;
      this.#record.host = host;
      if (text.includes(':') && !text.endsWith(']')) this.#record.port = port;
    } catch {
      // A host that does not parse leaves the URL as it was.
    }
  }

  get hostname() {
    return this.#record.host ?? '';
  }

  set hostname(value) {
    if (typeof this.#record.path === 'string') return;
    const text = String(value).split(/[/?#\\]/)[0];
    if (!text.startsWith('[') && text.includes(':')) return;
    try {
      const host = parseHost(text, isSpecial(this.#record.scheme), value);
      if (host === '' && isSpecial(this.#record.scheme)) return;
      this.#record.host = host;
    } catch {
      // As for `host`.
    }
  }

  get port() {
    return this.#record.port === null ? '' : String(this.#record.port);
  }

  set port(value) {
    if (this.#record.host === null || this.#record.host === '') return;
    const digits = /^[0-9]*/.exec(String(value))[0];
    if (digits === '' && String(value) !== '') return;
    try {
      this.#record.port = parsePort(digits, this.#record.scheme, value);
    } catch {
      // Out of range: unchanged.
    }
  }

  get pathname() {
    return serializePath(this.#record);
  }

  set pathname(value) {
    if (typeof this.#record.path === 'string') return;
    const special = isSpecial(this.#record.scheme);
    let text = String(value);
    if (!special && !text.startsWith('/') && this.#record.host !== null && text !== '') text = `/${text}`;
    this.#record.path = parsePath(text, null, special);
  }

  get search() {
    const { query } = this.#record;
    return query === null || query === '' ? '' : `?${query}`;
  }

  set search(value) {
    const text = String(value);
    const body = text.startsWith('?') ? text.slice(1) : text;
    this.#record.query = text === '' ? null : percentEncode(body, querySet(isSpecial(this.#record.scheme)));
    if (this.#params) resetParams(this.#params, this.#record.query);
  }

  get searchParams() {
    if (!this.#params) {
      this.#params = linkedParams(this.#record.query ?? '', (query) => {
        this.#record.query = query === '' ? null : query;
      });
    }
    return this.#params;
  }

  get hash() {
    const { fragment } = this.#record;
    return fragment === null || fragment === '' ? '' : `#${fragment}`;
  }

  set hash(value) {
    const text = String(value);
    const body = text.startsWith('#') ? text.slice(1) : text;
    this.#record.fragment = text === '' ? null : percentEncode(body, FRAGMENT_SET);
  }

  toString() {
    return this.href;
  }

  toJSON() {
    return this.href;
  }

  get [Symbol.toStringTag]() {
    return 'URL';
  }

  #credentialsFixed() {
    const { host } = this.#record;
    return host === null || host === '';
  }

  static {
    readRecord = (url) => url.#record;
  }
}

function recordOf(base) {
  if (base instanceof URL) return readRecord(base);
  return parseURL(base);
}
