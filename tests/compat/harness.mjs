// What the compatibility scripts share: their settings, clients for end users, and a runner
// that prints one TAP-like line per check and exits with status 1 when any check failed.
import { StateBackedClient } from "@statebacked/client";
import { signToken } from "@statebacked/token";

/** A required environment variable. */
export function setting(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

/** The server under test: an http:// URL on a loopback address, never a hosted default. */
export function apiHost() {
  const url = new URL(setting("STATEWIRE_URL"));
  const loopback = ["127.0.0.1", "[::1]", "localhost"];
  if (url.protocol !== "http:" || !loopback.includes(url.hostname)) {
    throw new Error(`STATEWIRE_URL must be an http URL on a loopback address, not ${url}`);
  }
  return url.origin;
}

/** The production key the scripts sign end-user tokens with, as `smply keys create` printed it. */
export function signingKey() {
  return {
    stateBackedKeyId: setting("STATEWIRE_KEY_ID"),
    stateBackedSecretKey: setting("STATEWIRE_KEY_SECRET"),
  };
}

/** A token for end user `sub`, signed the way an application backend signs one. */
export function userToken(sub, key = signingKey()) {
  return signToken(key, { sub }, { expires: { in: "1h" } });
}

/** A client acting as end user `sub`, pointed at the server under test. */
export function clientFor(sub, key = signingKey()) {
  return new StateBackedClient(() => userToken(sub, key), { apiHost: apiHost() });
}

const results = [];

/** Runs `body` as one named check and records whether it passed. */
export async function check(name, body) {
  try {
    await body();
    results.push(true);
    console.log(`ok - ${name}`);
  } catch (error) {
    results.push(false);
    console.log(`not ok - ${name}`);
    console.log(String(error?.stack ?? error).replace(/^/gm, "  # "));
  }
}

/** Prints the tally and sets the exit status. */
export function finish() {
  const failed = results.filter((passed) => !passed).length;
  console.log(`# ${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && results.length > 0 ? 0 : 1;
}

/** Calls `body` and returns what it threw; fails when it did not throw. */
export async function thrown(body) {
  try {
    await body();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, and it succeeded");
}
