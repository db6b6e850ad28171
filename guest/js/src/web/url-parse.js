// The URL parser behind `URL`: a subset of the WHATWG URL Standard.
//
// Supported: absolute URLs of any scheme; the special schemes (http, https, ws, wss, ftp) with
// hosts (domains, IPv4 in all its numeric forms, IPv6), ports, credentials, dot segments,
// backslashes as slashes, and the standard's percent-encoding of each component; relative
// references against a base. Not supported: `file:` URLs (refused), internationalized domain
// names (hosts must be ASCII; refused otherwise). A record is
// `{scheme, username, password, host, port, path, query, fragment}` where `host`, `port`,
// `query` and `fragment` may be null, and `path` is an array of segments, or a string for an
// opaque path (`mailto:x`).
import { utf8Decode, utf8Encode } from './encoding.js';

const DEFAULT_PORTS = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };

export const isSpecial = (scheme) => Object.hasOwn(DEFAULT_PORTS, scheme);
export const defaultPort = (scheme) => (isSpecial(scheme) ? DEFAULT_PORTS[scheme] : null);

/** Percent-encode sets, as predicates over ASCII code points. */
const c0Control = (c) => c < 0x20 || c === 0x7f;
export const FRAGMENT_SET = (c) => c0Control(c) || c === 0x20 || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60;
const QUERY_SET = (c) => c0Control(c) || c === 0x20 || c === 0x22 || c === 0x23 || c === 0x3c || c === 0x3e;
const SPECIAL_QUERY_SET = (c) => QUERY_SET(c) || c === 0x27;
export const PATH_SET = (c) => QUERY_SET(c) || c === 0x3f || c === 0x60 || c === 0x7b || c === 0x7d;
export const USERINFO_SET = (c) =>
  PATH_SET(c) || '/:;=@[\\]^|'.includes(String.fromCharCode(c));
export const querySet = (special) => (special ? SPECIAL_QUERY_SET : QUERY_SET);

/** Forbidden host code points: what may not appear in an opaque host. */
const FORBIDDEN_HOST = /[\u0000\t\n\r #/:<>?@[\\\]^|]/;

const hex = (byte) => `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`;

/**
 * The characters a set (an ASCII predicate) needs escaped, plus every non-ASCII one, as one
 * regular expression: most URLs need no escaping at all, and this finds that out at once.
 */
const needsEscape = new Map();

function escapePattern(set) {
  let pattern = needsEscape.get(set);
  if (!pattern) {
    let chars = '';
    for (let code = 0; code < 0x80; code += 1) {
      if (set(code)) chars += `\\u${code.toString(16).padStart(4, '0')}`;
    }
    pattern = new RegExp(`[${chars}\\u0080-\\uffff]`);
    needsEscape.set(set, pattern);
  }
  return pattern;
}

/** `text` with every code point in `set` (and every non-ASCII one) percent-encoded as UTF-8. */
export function percentEncode(text, set) {
  if (!escapePattern(set).test(text)) return text;
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0);
    if (code < 0x80) {
      out += set(code) ? hex(code) : char;
    } else {
      for (const byte of utf8Encode(char)) out += hex(byte);
    }
  }
  return out;
}

/** The bytes `%XX` sequences stand for, decoded as UTF-8; malformed escapes stay as they are. */
export function percentDecode(text) {
  // Without escapes or lone surrogates, decoding gives the text back.
  if (!/[%\ud800-\udfff]/.test(text)) return text;
  const bytes = utf8Encode(text);
  const out = new Uint8Array(bytes.length);
  let length = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    if (bytes[i] === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[length] = parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
      i += 2;
    } else {
      out[length] = bytes[i];
    }
    length += 1;
  }
  return utf8Decode(out.subarray(0, length), { ignoreBOM: true });
}

const isHex = (b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

export const invalid = (input) => new TypeError(`Invalid URL: ${input}`);

/** Parses `input` against an optional base record; throws a TypeError when it is not a URL. */
export function parseURL(input, base = null) {
  // Leading and trailing C0 controls and spaces go, and so do tabs and newlines anywhere.
  const text = String(input)
    .replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '')
    .replace(/[\t\n\r]/g, '');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    const rest = text.slice(scheme[0].length);
    if (name === 'file') throw new TypeError(`file: URLs are not supported: ${input}`);
    if (isSpecial(name)) {
      if (base && base.scheme === name && !/^[\\/]/.test(rest)) return relative(rest, base, input);
      return authority({ scheme: name }, rest.replace(/^[\\/]*/, ''), input);
    }
    if (rest.startsWith('//')) return authority({ scheme: name }, rest.slice(2), input);
    if (rest.startsWith('/')) return pathAndAfter({ scheme: name, host: null }, rest, null);
    return opaque(name, rest);
  }
  if (!base) throw invalid(input);
  if (typeof base.path === 'string') {
    if (!text.startsWith('#')) throw invalid(input);
    return { ...base, fragment: percentEncode(text.slice(1), FRAGMENT_SET) };
  }
  return relative(text, base, input);
}

function relative(text, base, input) {
  const special = isSpecial(base.scheme);
  const slash = special ? /^[\\/]/ : /^\//;
  const inherited = {
    scheme: base.scheme,
    username: base.username,
    password: base.password,
    host: base.host,
    port: base.port,
  };
  if (special ? /^[\\/]{2}/.test(text) : text.startsWith('//')) {
    const after = special ? text.replace(/^[\\/]*/, '') : text.slice(2);
    return authority({ scheme: base.scheme }, after, input);
  }
  if (slash.test(text)) return pathAndAfter(inherited, text, null);
  if (text === '' || text.startsWith('?') || text.startsWith('#')) {
    const path = typeof base.path === 'string' ? base.path : [...base.path];
    const record = { ...inherited, path, query: base.query, fragment: null };
    return queryAndFragment(record, text);
  }
  return pathAndAfter(inherited, text, base.path.slice(0, -1));
}

function opaque(scheme, rest) {
  const end = firstOf(rest, '?#');
  const record = {
    scheme,
    username: '',
    password: '',
    host: null,
    port: null,
    path: percentEncode(rest.slice(0, end), c0Control),
    query: null,
    fragment: null,
  };
  return queryAndFragment(record, rest.slice(end));
}

/** `text` starts right after the slashes that open the authority. */
function authority(record, text, input) {
  const special = isSpecial(record.scheme);
  const end = firstOf(text, special ? '/\\?#' : '/?#');
  const auth = text.slice(0, end);
  const at = auth.lastIndexOf('@');
  let username = '';
  let password = '';
  if (at !== -1) {
    const userinfo = auth.slice(0, at);
    const colon = userinfo.indexOf(':');
    username = percentEncode(colon === -1 ? userinfo : userinfo.slice(0, colon), USERINFO_SET);
    password = colon === -1 ? '' : percentEncode(userinfo.slice(colon + 1), USERINFO_SET);
  }
  const { host, port } = hostAndPort(auth.slice(at + 1), record.scheme, input);
  if (host === '' && (at !== -1 || port !== null)) throw invalid(input);
  const withHost = { scheme: record.scheme, username, password, host, port };
  return pathAndAfter(withHost, text.slice(end), null);
}

/** Splits `host[:port]` and parses both; the port is null when absent or the default. */
export function hostAndPort(text, scheme, input) {
  let hostText = text;
  let portText = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) throw invalid(input);
    hostText = text.slice(0, close + 1);
    const after = text.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(input);
      portText = after.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon !== -1) {
      hostText = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  return { host: parseHost(hostText, isSpecial(scheme), input), port: parsePort(portText, scheme, input) };
}

export function parsePort(text, scheme, input) {
  if (text === null || text === '') return null;
  if (!/^[0-9]+$/.test(text)) throw invalid(input);
  const port = Number(text);
  if (port > 65535) throw invalid(input);
  return port === defaultPort(scheme) ? null : port;
}

export function parseHost(text, special, input) {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) throw invalid(input);
    return `[${serializeIPv6(parseIPv6(text.slice(1, -1), input))}]`;
  }
  if (!special) {
    if (FORBIDDEN_HOST.test(text)) throw invalid(input);
    return percentEncode(text, c0Control);
  }
  if (text === '') throw invalid(input);
  const domain = percentDecode(text).toLowerCase();
  if (/[^\u0000-\u007e]/.test(domain)) {
    throw new TypeError(`Invalid URL: internationalized domain names are not supported: ${input}`);
  }
  if (FORBIDDEN_DOMAIN.test(domain)) throw invalid(input);
  if (DOTTED_QUAD.test(domain) && domain.split('.').every((octet) => Number(octet) <= 255)) return domain;
  if (endsInNumber(domain)) return serializeIPv4(parseIPv4(domain, input));
  return domain;
}

/** Forbidden domain code points: the forbidden host ones, C0 controls, `%` and DEL. */
const FORBIDDEN_DOMAIN = /[\u0000-\u0020#%/:<>?@[\\\]^|\u007f]/;
/** An IPv4 address already in its serialized form (no leading zeros). */
const DOTTED_QUAD = /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/;

function endsInNumber(domain) {
  const parts = domain.split('.');
  if (parts.at(-1) === '' && parts.length > 1) parts.pop();
  const last = parts.at(-1);
  return /^[0-9]+$/.test(last) || /^0[xX][0-9A-Fa-f]*$/.test(last);
}

function parseIPv4(domain, input) {
  const parts = domain.split('.');
  if (parts.at(-1) === '' && parts.length > 1) parts.pop();
  if (parts.length > 4) throw invalid(input);
  const numbers = parts.map((part) => {
    let digits = part;
    let radix = 10;
    if (/^0[xX]/.test(digits)) {
      digits = digits.slice(2);
      radix = 16;
    } else if (digits.length > 1 && digits.startsWith('0')) {
      digits = digits.slice(1);
      radix = 8;
    }
    if (digits === '') return 0;
    const valid = radix === 16 ? /^[0-9A-Fa-f]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
    if (!valid.test(digits)) throw invalid(input);
    return parseInt(digits, radix);
  });
  const last = numbers.pop();
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) throw invalid(input);
  return numbers.reduce((sum, n, index) => sum + n * 256 ** (3 - index), last);
}

function serializeIPv4(address) {
  const octets = [];
  let rest = address;
  for (let i = 0; i < 4; i += 1) {
    octets.unshift(rest % 256);
    rest = Math.floor(rest / 256);
  }
  return octets.join('.');
}

function parseIPv6(text, input) {
  const pieces = [0, 0, 0, 0, 0, 0, 0, 0];
  let index = 0;
  let compress = null;
  let at = 0;
  if (text.startsWith(':')) {
    if (!text.startsWith('::')) throw invalid(input);
    at = 2;
    index = 1;
    compress = 1;
  }
  while (at < text.length) {
    if (index === 8) throw invalid(input);
    if (text[at] === ':') {
      if (compress !== null) throw invalid(input);
      at += 1;
      index += 1;
      compress = index;
      continue;
    }
    const group = /^[0-9A-Fa-f]{0,4}/.exec(text.slice(at))[0];
    if (text[at + group.length] === '.') {
      if (index > 6) throw invalid(input);
      const v4 = text.slice(at);
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v4) || /(^|\.)0\d/.test(v4)) throw invalid(input);
      const octets = v4.split('.').map(Number);
      if (octets.some((n) => n > 255)) throw invalid(input);
      pieces[index] = octets[0] * 256 + octets[1];
      pieces[index + 1] = octets[2] * 256 + octets[3];
      index += 2;
      at = text.length;
      break;
    }
    if (group === '') throw invalid(input);
    pieces[index] = parseInt(group, 16);
    at += group.length;
    index += 1;
    if (at < text.length) {
      if (text[at] !== ':' || at + 1 === text.length) throw invalid(input);
      at += 1;
    }
  }
  if (compress !== null) {
    const moved = pieces.slice(compress, index);
    pieces.fill(0, compress, 8);
    pieces.splice(8 - moved.length, moved.length, ...moved);
  } else if (index !== 8) {
    throw invalid(input);
  }
  return pieces;
}

function serializeIPv6(pieces) {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start += 1) {
    let length = 0;
    while (start + length < 8 && pieces[start + length] === 0) length += 1;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  let out = '';
  for (let i = 0; i < 8; i += 1) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLength - 1;
      continue;
    }
    out += pieces[i].toString(16);
    if (i < 7) out += ':';
  }
  return out;
}

/** Parses a path (and what follows) onto `record`; `start` is the inherited segments. */
function pathAndAfter(record, text, start) {
  const end = firstOf(text, '?#');
  const withPath = {
    username: '',
    password: '',
    port: null,
    ...record,
    path: parsePath(text.slice(0, end), start, isSpecial(record.scheme)),
    query: null,
    fragment: null,
  };
  return queryAndFragment(withPath, text.slice(end));
}

/** The segments of a hierarchical path, with `.` and `..` resolved. */
export function parsePath(text, start, special) {
  const path = start ? [...start] : [];
  if (text === '') {
    if (special && path.length === 0) path.push('');
    return path;
  }
  const body = /^[\\/]/.test(text) && (special || text[0] === '/') ? text.slice(1) : text;
  const segments = body.split(special ? /[\\/]/ : '/');
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    const lower = segment.toLowerCase();
    if (lower === '..' || lower === '.%2e' || lower === '%2e.' || lower === '%2e%2e') {
      path.pop();
      if (last) path.push('');
    } else if (lower === '.' || lower === '%2e') {
      if (last) path.push('');
    } else {
      path.push(percentEncode(segment, PATH_SET));
    }
  });
  return path;
}

function queryAndFragment(record, text) {
  let rest = text;
  if (rest.startsWith('?')) {
    const end = firstOf(rest, '#');
    record.query = percentEncode(rest.slice(1, end), querySet(isSpecial(record.scheme)));
    rest = rest.slice(end);
  }
  if (rest.startsWith('#')) record.fragment = percentEncode(rest.slice(1), FRAGMENT_SET);
  return record;
}

/** Where the first of `chars` is in `text`, or its length. */
function firstOf(text, chars) {
  let pattern = delimiters.get(chars);
  if (!pattern) {
    pattern = new RegExp(`[${chars.replace(/[\\\]^-]/g, '\\$&')}]`);
    delimiters.set(chars, pattern);
  }
  const at = text.search(pattern);
  return at === -1 ? text.length : at;
}

const delimiters = new Map();

export function serializePath(record) {
  if (typeof record.path === 'string') return record.path;
  return record.path.map((segment) => `/${segment}`).join('');
}

/** The href of a record. */
export function serializeURL(record, { fragment = true } = {}) {
  let out = `${record.scheme}:`;
  if (record.host !== null) {
    out += '//';
    if (record.username !== '' || record.password !== '') {
      out += record.username;
      if (record.password !== '') out += `:${record.password}`;
      out += '@';
    }
    out += record.host;
    if (record.port !== null) out += `:${record.port}`;
  } else if (typeof record.path !== 'string' && record.path.length > 1 && record.path[0] === '') {
    out += '/.';
  }
  out += serializePath(record);
  if (record.query !== null) out += `?${record.query}`;
  if (fragment && record.fragment !== null) out += `#${record.fragment}`;
  return out;
}
