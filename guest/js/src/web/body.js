// `Request` and `Response`, with the body methods they share (`text`, `json`, `arrayBuffer`,
// `bytes`). Bodies are whole values, not streams: there is no `body` stream, and no `blob` or
// `formData`. A body can be read once (`bodyUsed`), as in the Fetch Standard.
import { utf8Decode, utf8Encode } from './encoding.js';
import { Headers } from './headers.js';
import { URLSearchParams } from './search-params.js';
import { URL } from './url.js';

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A body as given: `{text}` for strings and form data, `{bytes}` for binary data, or null,
 * with the content type it implies.
 */
export function extractBody(value) {
  if (value === undefined || value === null) return { source: null, type: null };
  if (typeof value === 'string') return { source: { text: value }, type: 'text/plain;charset=UTF-8' };
  if (value instanceof URLSearchParams || isForeignSearchParams(value)) {
    return { source: { text: value.toString() }, type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  if (value instanceof ArrayBuffer) return { source: { bytes: new Uint8Array(value.slice(0)) }, type: null };
  if (ArrayBuffer.isView(value)) {
    const view = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { source: { bytes: view.slice() }, type: null };
  }
  return { source: { text: String(value) }, type: 'text/plain;charset=UTF-8' };
}

function isForeignSearchParams(value) {
  return typeof value === 'object' && Object.prototype.toString.call(value) === '[object URLSearchParams]';
}

/** The body of a Request or Response without reading it; set when Body is defined. */
let peekBody;

class Body {
  #source;
  #used = false;

  constructor(source) {
    this.#source = source;
  }

  static {
    peekBody = (body) => body.#source;
  }

  get bodyUsed() {
    return this.#used;
  }

  #consume() {
    if (this.#used) return Promise.reject(new TypeError('Body has already been used'));
    this.#used = this.#source !== null;
    const source = this.#source;
    if (source === null) return Promise.resolve(new Uint8Array(0));
    return Promise.resolve(source.bytes ? source.bytes.slice() : utf8Encode(source.text));
  }

  text() {
    const source = this.#source;
    if (source && source.text !== undefined && !this.#used) {
      this.#used = true;
      return Promise.resolve(source.text);
    }
    return this.#consume().then((bytes) => utf8Decode(bytes));
  }

  json() {
    return this.text().then((text) => JSON.parse(text));
  }

  arrayBuffer() {
    return this.#consume().then((bytes) => bytes.buffer);
  }

  bytes() {
    return this.#consume();
  }
}

export class Request extends Body {
  #url;
  #method;
  #headers;
  #signal;
  #redirect;

  constructor(input, init = {}) {
    const options = init === null || init === undefined ? {} : init;
    const from = input instanceof Request || isRequestLike(input) ? input : null;
    const url = new URL(from ? from.url : input);
    url.hash = '';
    let method = options.method !== undefined ? String(options.method) : from ? from.method : 'GET';
    if (!METHOD.test(method)) throw new TypeError(`Request: invalid method "${method}"`);
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) throw new TypeError(`Request: method ${method} is not allowed`);
    if (NORMALIZED_METHODS.has(method.toUpperCase())) method = method.toUpperCase();
    const headers = new Headers(options.headers !== undefined ? options.headers : from ? from.headers : undefined);
    let extracted;
    if (options.body !== undefined) {
      extracted = extractBody(options.body);
    } else if (from instanceof Request) {
      extracted = { source: peekBody(from), type: null };
    } else {
      extracted = { source: null, type: null };
    }
    if (extracted.source !== null && (method === 'GET' || method === 'HEAD')) {
      throw new TypeError(`Request: a ${method} request cannot have a body`);
    }
    if (extracted.type && !headers.has('content-type')) headers.set('content-type', extracted.type);
    super(extracted.source);
    this.#url = url.href;
    this.#method = method;
    this.#headers = headers;
    this.#signal = options.signal !== undefined ? options.signal : from ? from.signal : null;
    this.#redirect = options.redirect !== undefined ? String(options.redirect) : from ? from.redirect : 'follow';
  }

  get url() {
    return this.#url;
  }

  get method() {
    return this.#method;
  }

  get headers() {
    return this.#headers;
  }

  get signal() {
    return this.#signal;
  }

  get redirect() {
    return this.#redirect;
  }

  clone() {
    if (this.bodyUsed) throw new TypeError('Request.clone: the body was already used');
    return new Request(this);
  }

  get [Symbol.toStringTag]() {
    return 'Request';
  }
}

function isRequestLike(value) {
  if (value === null || typeof value !== 'object') return false;
  return typeof value.url === 'string' && typeof value.method === 'string';
}

/** What `fetch` sets on a response it builds from a host result (not settable by machines). */
const FROM_NETWORK = Symbol('from network');

export class Response extends Body {
  #status;
  #statusText;
  #headers;
  #url = '';
  #redirected = false;
  #type = 'default';

  constructor(body = null, init = {}) {
    const options = init === null || init === undefined ? {} : init;
    const status = options.status === undefined ? 200 : Number(options.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError(`Response: status ${options.status} is outside 200–599`);
    }
    const extracted = extractBody(body);
    if (extracted.source !== null && NULL_BODY_STATUSES.has(status)) {
      throw new TypeError(`Response: a ${status} response cannot have a body`);
    }
    const headers = new Headers(options.headers);
    if (extracted.type && !headers.has('content-type')) headers.set('content-type', extracted.type);
    super(extracted.source);
    this.#status = status;
    this.#statusText = options.statusText === undefined ? '' : String(options.statusText);
    this.#headers = headers;
    const network = options[FROM_NETWORK];
    if (network) {
      this.#url = network.url;
      this.#redirected = network.redirected;
      this.#type = 'basic';
    }
  }

  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('Response.json: the data is not JSON');
    const headers = new Headers(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new Response(text, { ...init, headers });
  }

  static error() {
    const response = new Response(null, { status: 200 });
    response.#status = 0;
    response.#type = 'error';
    return response;
  }

  static redirect(url, status = 302) {
    if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError('Response.redirect: invalid status');
    return new Response(null, { status, headers: { location: new URL(url).href } });
  }

  get ok() {
    return this.#status >= 200 && this.#status <= 299;
  }

  get status() {
    return this.#status;
  }

  get statusText() {
    return this.#statusText;
  }

  get headers() {
    return this.#headers;
  }

  get url() {
    return this.#url;
  }

  get redirected() {
    return this.#redirected;
  }

  get type() {
    return this.#type;
  }

  clone() {
    if (this.bodyUsed) throw new TypeError('Response.clone: the body was already used');
    const source = peekBody(this);
    const copy = source === null ? null : source.bytes ? source.bytes.slice() : source.text;
    const init = { status: this.#status || 200, statusText: this.#statusText, headers: this.#headers };
    if (this.#type === 'basic') init[FROM_NETWORK] = { url: this.#url, redirected: this.#redirected };
    const response = new Response(copy, init);
    response.#status = this.#status;
    response.#type = this.#type;
    return response;
  }

  get [Symbol.toStringTag]() {
    return 'Response';
  }
}

/** A response for what the host fetched; `body` is a string or bytes. */
export function networkResponse({ status, statusText, headers, body, url, redirected }) {
  return new Response(NULL_BODY_STATUSES.has(status) ? null : body, {
    status,
    statusText,
    headers,
    [FROM_NETWORK]: { url, redirected },
  });
}

/** The body source of a request: `{text}`, `{bytes}` or null. */
export const requestBody = (request) => peekBody(request);
