// `fetch` over host operations. The request goes to the host as a `fetch` operation; the host
// performs it (its own limits, redirects and address policy apply) and answers with
// `complete_op`, which settles the promise with a `Response` or rejects it with a TypeError,
// as a network error does. An AbortSignal rejects the promise and tells the host to abort.
//
// During a pure step the operation is held back until the step is committed (`run_effects`)
// and dropped if it is not (`discard`); a dropped fetch never settles. While loading and in
// the authorizers there is no host to ask: fetch rejects.
import { networkResponse, Request, requestBody } from './body.js';
import { base64Decode, base64Encode } from './encoding.js';
import { headersObject } from './headers.js';

export function createFetch(hostOps) {
  return function fetch(input, init) {
    return new Promise((resolve, reject) => {
      const request = new Request(input, init);
      const { signal } = request;
      if (signal && signal.aborted) throw signal.reason;
      if (!/^https?:/.test(request.url)) {
        throw new TypeError(`fetch: only http and https URLs can be fetched, not ${request.url}`);
      }
      if (hostOps.phase === 'closed') {
        throw new TypeError(
          'fetch is only available to machine actions and services, not while loading or authorizing',
        );
      }
      let onAbort = null;
      const settle = (result) => {
        if (onAbort) signal.removeEventListener('abort', onAbort);
        try {
          resolve(responseOf(result, request.url));
        } catch (error) {
          reject(error);
        }
      };
      const opId = hostOps.request('fetch', { request: describe(request) }, settle);
      if (signal && typeof signal.addEventListener === 'function') {
        onAbort = () => {
          hostOps.cancel(opId);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  };
}

/** The request as the host gets it: text bodies as `body`, binary ones as `bodyBase64`. */
function describe(request) {
  const out = {
    method: request.method,
    url: request.url,
    headers: headersObject(request.headers),
    body: null,
  };
  const source = requestBody(request);
  if (source && source.bytes) out.bodyBase64 = base64Encode(source.bytes);
  else if (source) out.body = source.text;
  return out;
}

/** The Response for a host result, or the TypeError a failed fetch rejects with. */
function responseOf(result, url) {
  if (result === null || typeof result !== 'object' || result.ok !== true) {
    const reason = result && typeof result.error === 'string' ? result.error : 'the host could not fetch';
    throw new TypeError(`fetch failed: ${reason}`);
  }
  const status = Number(result.status);
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new TypeError(`fetch failed: the host answered with status ${result.status}`);
  }
  let body = null;
  if (typeof result.bodyBase64 === 'string') body = base64Decode(result.bodyBase64);
  else if (typeof result.body === 'string') body = result.body;
  return networkResponse({
    status,
    statusText: typeof result.statusText === 'string' ? result.statusText : '',
    headers: result.headers || {},
    body,
    url: typeof result.url === 'string' ? result.url : url,
    redirected: result.redirected === true,
  });
}
