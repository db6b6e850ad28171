// UTF-8 encoding and decoding: `TextEncoder` and `TextDecoder` as the Encoding Standard
// defines them, for UTF-8 only (the only encoding `TextEncoder` ever had; `TextDecoder` refuses
// other labels with a RangeError). Not supported: `decode(…, {stream: true})`.

const UTF8_LABELS = new Set([
  'utf-8',
  'utf8',
  'unicode-1-1-utf-8',
  'unicode11utf8',
  'unicode20utf8',
  'x-unicode20utf8',
]);
const REPLACEMENT = 0xfffd;
/** Code units handed to `String.fromCharCode` at once, well under any argument limit. */
const CHUNK_UNITS = 8192;

/** The UTF-8 bytes of a string; lone surrogates become U+FFFD, as for any USVString. */
export function utf8Encode(text) {
  const input = String(text);
  const out = new Uint8Array(input.length * 3);
  let written = 0;
  for (let i = 0; i < input.length; i += 1) {
    let cp = input.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const next = i + 1 < input.length ? input.charCodeAt(i + 1) : 0;
      if (cp <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
        i += 1;
      } else {
        cp = REPLACEMENT;
      }
    }
    written = putCodePoint(out, written, cp);
  }
  return out.slice(0, written);
}

function putCodePoint(out, at, cp) {
  if (cp < 0x80) {
    out[at] = cp;
    return at + 1;
  }
  if (cp < 0x800) {
    out[at] = 0xc0 | (cp >> 6);
    out[at + 1] = 0x80 | (cp & 0x3f);
    return at + 2;
  }
  if (cp < 0x10000) {
    out[at] = 0xe0 | (cp >> 12);
    out[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
    out[at + 2] = 0x80 | (cp & 0x3f);
    return at + 3;
  }
  out[at] = 0xf0 | (cp >> 18);
  out[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
  out[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
  out[at + 3] = 0x80 | (cp & 0x3f);
  return at + 4;
}

/**
 * Decodes UTF-8 bytes. Each maximal ill-formed subsequence becomes one U+FFFD, or, with
 * `fatal`, a TypeError; this is the Encoding Standard's decoder.
 */
export function utf8Decode(bytes, { fatal = false, ignoreBOM = false } = {}) {
  const units = [];
  const parts = [];
  const flush = () => {
    parts.push(String.fromCharCode.apply(null, units));
    units.length = 0;
  };
  const push = (cp) => {
    if (cp >= 0x10000) {
      units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else {
      units.push(cp);
    }
    if (units.length >= CHUNK_UNITS) flush();
  };
  const fail = () => {
    if (fatal) throw new TypeError('The encoded data was not valid UTF-8');
    push(REPLACEMENT);
  };
  let i = 0;
  if (!ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      push(lead);
      i += 1;
      continue;
    }
    let needed;
    let cp;
    let lower = 0x80;
    let upper = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      needed = 1;
      cp = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      needed = 2;
      cp = lead & 0x0f;
      if (lead === 0xe0) lower = 0xa0;
      if (lead === 0xed) upper = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      needed = 3;
      cp = lead & 0x07;
      if (lead === 0xf0) lower = 0x90;
      if (lead === 0xf4) upper = 0x8f;
    } else {
      fail();
      i += 1;
      continue;
    }
    let seen = 1;
    while (seen <= needed) {
      const byte = i + seen < bytes.length ? bytes[i + seen] : -1;
      if (byte < lower || byte > upper) break;
      cp = (cp << 6) | (byte & 0x3f);
      lower = 0x80;
      upper = 0xbf;
      seen += 1;
    }
    if (seen <= needed) {
      // The bytes read so far form the ill-formed subsequence; the byte that broke it is read
      // again as a new lead.
      fail();
      i += seen;
      continue;
    }
    push(cp);
    i += seen;
  }
  flush();
  return parts.join('');
}

/** The bytes of a BufferSource as a Uint8Array view (no copy). */
export function bytesOf(source, what) {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  }
  throw new TypeError(`${what} must be an ArrayBuffer or a view of one`);
}

export class TextEncoder {
  get encoding() {
    return 'utf-8';
  }

  encode(input = '') {
    return utf8Encode(input);
  }

  /** Writes as many whole code points of `input` as fit into `destination`. */
  encodeInto(input, destination) {
    if (!(destination instanceof Uint8Array)) {
      throw new TypeError('encodeInto: the destination must be a Uint8Array');
    }
    const text = String(input);
    let read = 0;
    let written = 0;
    for (const char of text) {
      const encoded = utf8Encode(char);
      if (written + encoded.length > destination.length) break;
      destination.set(encoded, written);
      written += encoded.length;
      read += char.length;
    }
    return { read, written };
  }
}

export class TextDecoder {
  #fatal;
  #ignoreBOM;

  constructor(label = 'utf-8', options = {}) {
    const name = String(label).trim().toLowerCase();
    if (!UTF8_LABELS.has(name)) {
      throw new RangeError(`The encoding '${label}' is not supported; only utf-8 is`);
    }
    this.#fatal = Boolean(options && options.fatal);
    this.#ignoreBOM = Boolean(options && options.ignoreBOM);
  }

  get encoding() {
    return 'utf-8';
  }

  get fatal() {
    return this.#fatal;
  }

  get ignoreBOM() {
    return this.#ignoreBOM;
  }

  decode(input, options) {
    if (options && options.stream) {
      throw new TypeError('TextDecoder: streaming decode is not supported');
    }
    if (input === undefined || input === null) return '';
    return utf8Decode(bytesOf(input, 'TextDecoder.decode input'), {
      fatal: this.#fatal,
      ignoreBOM: this.#ignoreBOM,
    });
  }
}

/** Base64 of bytes, through the engine's `btoa`. */
export function base64Encode(bytes) {
  const units = [];
  const parts = [];
  for (let i = 0; i < bytes.length; i += 1) {
    units.push(bytes[i]);
    if (units.length >= CHUNK_UNITS) {
      parts.push(String.fromCharCode.apply(null, units));
      units.length = 0;
    }
  }
  parts.push(String.fromCharCode.apply(null, units));
  return btoa(parts.join(''));
}

/** Bytes of base64 text, through the engine's `atob` (which throws on malformed input). */
export function base64Decode(text) {
  const binary = atob(String(text));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}
