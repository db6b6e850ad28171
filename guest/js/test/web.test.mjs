// The guest's web platform globals, checked against Node's own implementations of the same
// standards (the engine has none of them; under Node the glue keeps Node's, so these tests
// import ours directly).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { AbortController as OurAbortController } from '../src/web/abort.js';
import { Request, Response } from '../src/web/body.js';
import { structuredClone as clone } from '../src/web/clone.js';
import { createCrypto } from '../src/web/crypto.js';
import { TextDecoder as Decoder, TextEncoder as Encoder } from '../src/web/encoding.js';
import { Headers as OurHeaders } from '../src/web/headers.js';
import { URLSearchParams as Params } from '../src/web/search-params.js';
import { URL as OurURL } from '../src/web/url.js';

const TIMEOUT = { timeout: 20_000 };

const URL_CASES = [
  ['https://user:pa ss@Host.Example:8443/über/ä?q=ü&x=1#frag ment'],
  ['http://a/b^c?d^e#f^g'],
  ['http://a/`{}?`{}#`{}'],
  ["http://a/x'y?x'y"],
  ["foo:x'y?a'b"],
  ['http://1.2.3/'],
  ['http://0x7f.1/'],
  ['http://4294967295/'],
  ['http://256.1/'],
  ['http://1.2.3.4.5/'],
  ['http://09/'],
  ['http://[0:0::1]/'],
  ['http://[::ffff:192.168.0.1]/'],
  ['http://[1:0:0:2:0:0:0:3]:8080/'],
  ['http://[1::]/'],
  ['http://EXAMPLE.com:80/a/./b/../c'],
  ['http://a/%2e%2E/b'],
  ['http:/\\a\\b'],
  ['non:/a/../b'],
  ['non://h:99/a b'],
  ['non:/.//p'],
  ['mailto:someone@example.com?subject=hi'],
  ['blob:https://a/uuid'],
  ['http://a?'],
  ['http://a/b?c#'],
  ['http://x:65536/'],
  ['http://x:0080/'],
  ['ws://x:80/'],
  ['http://a b/'],
  ['http://ex%41mple.com/'],
  ['http://@a/'],
  ['http://a:b@/'],
  ['  http://a/\t b\n  '],
  ['http://a/b/..'],
  ['http://a/%zz/%41'],
  ['HTTP://A/'],
  ['/x/y?z', 'http://a/b/c'],
  ['../d', 'http://a/b/c/e'],
  ['?q', 'http://a/b?old#h'],
  ['#h2', 'http://a/b?old#h'],
  ['', 'http://a/b?old#h'],
  ['//other/p', 'https://a/b'],
  ['g;x?y#s', 'http://a/b/c/d;p?q'],
  ['../../../g', 'http://a/b/c/d;p?q'],
  ['x', 'mailto:a'],
  ['#y', 'mailto:a'],
  ['https://example.com/api/v1/users?id=42&name=J%C3%B6rg'],
];

const parts = (u) =>
  [u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash].join(' | ');

describe('URL and URLSearchParams', () => {
  test('parsing gives what Node gives, component by component', TIMEOUT, () => {
    for (const [input, base] of URL_CASES) {
      let expected;
      try {
        expected = parts(new URL(input, base));
      } catch {
        expected = 'TypeError';
      }
      let actual;
      try {
        actual = parts(new OurURL(input, base));
      } catch (error) {
        actual = error instanceof TypeError ? 'TypeError' : String(error);
      }
      assert.equal(actual, expected, `${JSON.stringify(input)} against ${base}`);
    }
    assert.equal(OurURL.canParse('/x'), false);
    assert.equal(OurURL.canParse('/x', 'https://a'), true);
    assert.throws(() => new OurURL('file:///etc/passwd'), TypeError);
    assert.throws(() => new OurURL('http://bücher.example/'), /internationalized/);
  });

  test('setters and the linked searchParams change the URL as in Node', TIMEOUT, () => {
    const edit = (u) => {
      u.searchParams.append('y', 'a b&c');
      u.searchParams.set('x', '2');
      u.hash = 'frag x';
      u.pathname = '/new path';
      u.port = '8080';
      u.hostname = 'Other';
      const trail = [u.href];
      u.search = '?q=1';
      trail.push(u.searchParams.get('q'), u.href);
      u.searchParams.delete('q');
      trail.push(u.href);
      u.username = 'me';
      u.password = 'p@ss';
      u.protocol = 'https';
      trail.push(u.href);
      u.href = 'https://z/';
      trail.push(u.href, u.searchParams.toString(), JSON.stringify(u));
      return trail;
    };
    assert.deepEqual(edit(new OurURL('http://a/b?x=1')), edit(new URL('http://a/b?x=1')));
  });

  test('search params parse, edit and serialize as in Node', TIMEOUT, () => {
    const inits = ['a=1&b=2&a=3', '?x=%20y+z&&=&k', 'ü=ö&plus=%2B', '%zz=1&%E2%82=2', [['a', '1'], ['b', '2']], { k: 'v', n: 1 }];
    for (const init of inits) {
      const ours = new Params(init);
      const theirs = new URLSearchParams(init);
      assert.equal(ours.toString(), theirs.toString());
      assert.deepEqual([...ours], [...theirs]);
      for (const p of [ours, theirs]) {
        p.append('z z', '1+1=2');
        p.set('a', 'first');
        p.delete('b');
        p.sort();
      }
      assert.equal(ours.toString(), theirs.toString());
      assert.equal(ours.size, theirs.size);
      assert.deepEqual(ours.getAll('a'), theirs.getAll('a'));
      assert.equal(ours.has('a', 'first'), theirs.has('a', 'first'));
    }
    assert.throws(() => new Params([['only-one']]), TypeError);
  });
});

describe('TextEncoder and TextDecoder', () => {
  test('encoding matches Node, lone surrogates included', TIMEOUT, () => {
    const samples = ['', 'plain', 'ü€𝄞', '\ud800', 'a\udc00b', '\ud83d\ude00\ud83d', 'x'.repeat(20000)];
    for (const text of samples) {
      assert.deepEqual(new Encoder().encode(text), new TextEncoder().encode(text));
    }
    const target = new Uint8Array(5);
    assert.deepEqual(new Encoder().encodeInto('a€𝄞', target), new TextEncoder().encodeInto('a€𝄞', new Uint8Array(5)));
  });

  test('decoding random bytes gives what Node gives, replacement characters included', TIMEOUT, () => {
    const ours = new Decoder();
    const theirs = new TextDecoder();
    for (let i = 0; i < 2000; i += 1) {
      const bytes = randomBytes(1 + (i % 40));
      // Bias towards bytes that make multi-byte sequences.
      for (let j = 0; j < bytes.length; j += 1) if (j % 3 === 0) bytes[j] |= 0x80;
      assert.equal(ours.decode(bytes), theirs.decode(bytes), bytes.toString('hex'));
      const strict = () => new Decoder('utf-8', { fatal: true }).decode(bytes);
      let nodeFails = false;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        nodeFails = true;
      }
      if (nodeFails) assert.throws(strict, TypeError);
      else assert.equal(strict(), theirs.decode(bytes));
    }
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
    assert.equal(ours.decode(bom), 'a');
    assert.equal(new Decoder('utf8', { ignoreBOM: true }).decode(bom), '\ufeffa');
    assert.throws(() => new Decoder('latin1'), RangeError);
  });
});

describe('structuredClone, crypto and cancellation', () => {
  test('structuredClone copies what Node copies, cycles and shared references included', TIMEOUT, () => {
    const shared = { s: 1 };
    const value = {
      n: 1,
      big: 10n,
      list: [1, 'two', { three: 3 }, shared, shared],
      when: new Date(0),
      re: /a+/gi,
      map: new Map([[{ k: 1 }, new Set([1, 2])]]),
      bytes: new Uint16Array([1, 2, 3]),
      error: new RangeError('out'),
    };
    value.self = value;
    const ours = clone(value);
    const theirs = structuredClone(value);
    assert.deepEqual(ours, theirs);
    assert.notEqual(ours.list[3], shared);
    assert.equal(ours.list[3], ours.list[4]);
    assert.equal(ours.self, ours);
    assert.throws(() => clone({ f() {} }), /could not be cloned/);
    assert.throws(() => clone(Symbol('s')), /could not be cloned/);
  });

  test('crypto fills integer arrays and makes version 4 UUIDs', TIMEOUT, () => {
    const crypto = createCrypto((n) => randomBytes(n).buffer);
    const uuids = new Set(Array.from({ length: 200 }, () => crypto.randomUUID()));
    assert.equal(uuids.size, 200);
    for (const uuid of uuids) assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const filled = crypto.getRandomValues(new Uint32Array(64));
    assert.ok(filled.some((n) => n !== 0));
    assert.throws(() => crypto.getRandomValues(new Float64Array(2)), /integer typed array/);
    assert.throws(() => crypto.getRandomValues(new Uint8Array(65537)), /at most 65536/);
  });

  test('an aborted controller fires its listeners once, with an AbortError', TIMEOUT, () => {
    const controller = new OurAbortController();
    const seen = [];
    controller.signal.addEventListener('abort', () => seen.push('listener'));
    controller.signal.onabort = () => seen.push('onabort');
    controller.abort();
    controller.abort();
    assert.deepEqual(seen, ['onabort', 'listener']);
    assert.equal(controller.signal.reason.name, 'AbortError');
    assert.throws(() => controller.signal.throwIfAborted(), { name: 'AbortError' });
  });
});

describe('Headers, Request and Response', () => {
  test('headers combine and iterate as in Node', TIMEOUT, () => {
    const init = [['B', '2'], ['a', ' 1 '], ['b', '3'], ['Set-Cookie', 'x=1'], ['set-cookie', 'y=2']];
    const ours = new OurHeaders(init);
    const theirs = new Headers(init);
    assert.deepEqual([...ours], [...theirs]);
    assert.equal(ours.get('b'), theirs.get('b'));
    assert.deepEqual(ours.getSetCookie(), theirs.getSetCookie());
    assert.throws(() => new OurHeaders({ 'bad name': 'x' }), TypeError);
    assert.throws(() => new OurHeaders({ ok: 'a\r\nb' }), TypeError);
  });

  test('bodies are read once, as text, JSON or bytes', TIMEOUT, async () => {
    const response = new Response('{"a":1}', { status: 201, headers: { etag: 'e' } });
    assert.equal(response.ok, true);
    assert.equal(response.headers.get('content-type'), 'text/plain;charset=UTF-8');
    const copy = response.clone();
    assert.deepEqual(await response.json(), { a: 1 });
    assert.equal(response.bodyUsed, true);
    await assert.rejects(response.text(), TypeError);
    assert.deepEqual(new Uint8Array(await copy.arrayBuffer()), new TextEncoder().encode('{"a":1}'));
    assert.throws(() => new Response('x', { status: 204 }), TypeError);
    assert.throws(() => new Response(null, { status: 99 }), RangeError);
    const json = Response.json({ b: 2 });
    assert.equal(json.headers.get('content-type'), 'application/json');
    assert.deepEqual(await json.json(), { b: 2 });
  });

  test('requests normalize methods and refuse bodies on GET', TIMEOUT, async () => {
    const request = new Request('https://a.test/x#frag', { method: 'post', body: new URLSearchParams({ q: 'a b' }) });
    assert.equal(request.method, 'POST');
    assert.equal(request.url, 'https://a.test/x');
    assert.equal(request.headers.get('content-type'), 'application/x-www-form-urlencoded;charset=UTF-8');
    assert.equal(await request.text(), 'q=a+b');
    assert.equal(new Request('https://a.test', { method: 'patch' }).method, 'patch');
    assert.throws(() => new Request('https://a.test', { body: 'x' }), TypeError);
    assert.throws(() => new Request('https://a.test', { method: 'TRACE' }), TypeError);
    assert.throws(() => new Request('/relative'), TypeError);
  });
});

describe('fetch over host operations', () => {
  test('a request becomes an operation and the result a Response; binary bodies travel as base64', TIMEOUT, async () => {
    const { createHostOps } = await import('../src/host-ops.js');
    const { createFetch } = await import('../src/web/fetch.js');
    const hostOps = createHostOps();
    const fetch = createFetch(hostOps);
    hostOps.begin('effects');
    const pending = fetch('https://a.test/upload', {
      method: 'PUT',
      headers: { 'X-Trace': 't1' },
      body: new Uint8Array([0, 255, 1]),
    });
    const controller = new OurAbortController();
    const aborted = fetch(new Request('https://a.test/slow', { signal: controller.signal }));
    controller.abort();
    const { ops, abort } = hostOps.take();
    assert.deepEqual(ops, [
      {
        opId: 1,
        kind: 'fetch',
        request: { method: 'PUT', url: 'https://a.test/upload', headers: { 'x-trace': 't1' }, body: null, bodyBase64: 'AP8B' },
      },
      { opId: 2, kind: 'fetch', request: { method: 'GET', url: 'https://a.test/slow', headers: {}, body: null } },
    ]);
    assert.deepEqual(abort, [2]);
    await assert.rejects(aborted, { name: 'AbortError' });
    assert.equal(hostOps.complete(2, { ok: true, status: 200 }), false);
    hostOps.complete(1, { ok: true, status: 201, statusText: 'Created', headers: { etag: 'v2' }, bodyBase64: 'AQID' });
    const response = await pending;
    assert.equal(response.status, 201);
    assert.equal(response.statusText, 'Created');
    assert.equal(response.url, 'https://a.test/upload');
    assert.equal(response.headers.get('ETag'), 'v2');
    assert.deepEqual([...new Uint8Array(await response.arrayBuffer())], [1, 2, 3]);
    hostOps.end();
    await assert.rejects(fetch('https://a.test/'), /only available to machine actions and services/);
    await assert.rejects(fetch('ftp://a.test/'), /only http and https/);
  });
});

describe('Math.random', () => {
  test('stirs fresh bytes into its state on first use in each call', TIMEOUT, async () => {
    const { createMathRandom, nextCall } = await import('../src/web/math-random.js');
    let asked = 0;
    const random = createMathRandom((n) => {
      asked += 1;
      return randomBytes(n).buffer;
    });
    nextCall();
    const draws = Array.from({ length: 1000 }, () => random());
    assert.equal(asked, 1, 'one stir per call, however many draws');
    assert.ok(draws.every((x) => x >= 0 && x < 1));
    assert.equal(new Set(draws).size, 1000);
    nextCall();
    random();
    assert.equal(asked, 2);

    // Two copies of the same state part ways once each stirs in its own bytes.
    const fixed = (byte) => () => new Uint8Array(16).fill(byte).buffer;
    const a = createMathRandom(fixed(1));
    const b = createMathRandom(fixed(1));
    const c = createMathRandom(fixed(2));
    nextCall();
    assert.equal(a(), b());
    assert.notEqual(a(), c());
  });
});
