// Loaded with `node --import` before smply or a test script runs: every outgoing TCP or TLS
// connection must go to a loopback address, so that nothing here can ever reach a hosted
// service (smply's defaults name api.statebacked.dev and a Supabase project). A refused
// connection throws in the caller and prints one line starting with REFUSED_PREFIX on stderr,
// which the Rust test checks for.
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

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connectToLoopbackOnly(...args) {
  const host = targetHost(args);
  if (host !== null && !LOOPBACK_HOSTS.has(String(host).toLowerCase())) {
    process.stderr.write(`${REFUSED_PREFIX} a connection to ${host}\n`);
    throw new Error(`loopback-only: connections to ${host} are not allowed`);
  }
  return connect.apply(this, args);
};
