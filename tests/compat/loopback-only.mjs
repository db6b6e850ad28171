// Loaded with `node --import` before smply or a test script runs: every outgoing TCP or TLS
// connection must go to a loopback address, and no other name may be looked up, so that
// nothing here can ever reach a hosted service (smply's defaults name api.statebacked.dev and
// a Supabase project). A refusal throws in the caller (or fails its callback) and prints one
// line starting with REFUSED_PREFIX on stderr, which the Rust test checks for.
import dns from "node:dns";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";

export const REFUSED_PREFIX = "loopback-only: refused";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]);

/** The host a `Socket#connect` call aims at, or null for a local (IPC) socket path. */
function targetHost(args) {
  let first = args[0];
  // net.connect() hands Socket#connect an already normalized [options, callback] array.
  if (Array.isArray(first)) first = first[0];
  if (typeof first === "string" && args.length === 1) return null;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    return typeof args[1] === "string" ? args[1] : "localhost";
  }
  if (first && typeof first === "object") {
    if (typeof first.path === "string") return null;
    return first.host ?? "localhost";
  }
  return String(first);
}

function isLoopback(host) {
  return LOOPBACK_HOSTS.has(String(host).toLowerCase());
}

function refusal(what, host) {
  process.stderr.write(`${REFUSED_PREFIX} ${what} ${host}\n`);
  return new Error(`loopback-only: ${what} ${host} is not allowed`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connectToLoopbackOnly(...args) {
  const host = targetHost(args);
  if (host !== null && !isLoopback(host)) {
    throw refusal("a connection to", host);
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function lookupLoopbackOnly(host, ...rest) {
  if (!isLoopback(host)) {
    const callback = rest.at(-1);
    const error = refusal("a name lookup of", host);
    if (typeof callback === "function") {
      process.nextTick(callback, error);
      return undefined;
    }
    throw error;
  }
  return lookup.call(this, host, ...rest);
};

const lookupPromise = dns.promises.lookup;
dns.promises.lookup = function lookupLoopbackOnly(host, ...rest) {
  if (!isLoopback(host)) {
    return Promise.reject(refusal("a name lookup of", host));
  }
  return lookupPromise.call(this, host, ...rest);
};

// `import { lookup } from "node:dns"` must see the guarded functions too.
syncBuiltinESMExports();
