// Captures `console.*` calls made by machine code into the current call's log list.
//
// Limits per call, so that a chatty or looping machine cannot grow the output without bound:
// at most MAX_ENTRIES entries, each message cut at MAX_MESSAGE_CHARS, and at most
// MAX_TOTAL_CHARS of messages overall. What is dropped is counted in one final warning entry.
// Format specifiers such as `%s` are not interpreted; arguments are joined with spaces.

const MAX_ENTRIES = 1000;
const MAX_MESSAGE_CHARS = 8 * 1024;
const MAX_TOTAL_CHARS = 256 * 1024;

export function createLogSink() {
  let entries = [];
  let totalChars = 0;
  let dropped = 0;
  let muted = 0;

  const push = (level, args) => {
    if (muted > 0) return;
    if (entries.length >= MAX_ENTRIES || totalChars >= MAX_TOTAL_CHARS) {
      dropped += 1;
      return;
    }
    let message = formatArgs(args);
    if (message.length > MAX_MESSAGE_CHARS) {
      message = `${message.slice(0, MAX_MESSAGE_CHARS)}… (${message.length} chars)`;
    }
    totalChars += message.length;
    entries.push({ level, message });
  };

  const at = (level) => (...args) => push(level, args);
  const noop = () => {};
  const console = {
    log: at('log'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
    trace: at('debug'),
    dir: at('log'),
    table: at('log'),
    assert: (condition, ...args) => {
      if (!condition) push('error', ['Assertion failed', ...args]);
    },
    group: noop,
    groupCollapsed: noop,
    groupEnd: noop,
    time: noop,
    timeEnd: noop,
    timeLog: noop,
    count: noop,
    countReset: noop,
  };

  /** The entries since the last `take`, and a fresh start. */
  const take = () => {
    const taken = entries;
    if (dropped > 0) {
      taken.push({ level: 'warn', message: `${dropped} more log entries were dropped` });
    }
    entries = [];
    totalChars = 0;
    dropped = 0;
    return taken;
  };

  /** Runs `fn` with capture switched off (for work whose output is thrown away). */
  const mute = (fn) => {
    muted += 1;
    try {
      return fn();
    } finally {
      muted -= 1;
    }
  };

  return { console, take, mute };
}

function formatArgs(args) {
  return args.map(formatOne).join(' ');
}

function formatOne(value) {
  if (typeof value === 'string') return value;
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // Not JSON (a cycle, a BigInt): fall back to String below.
  }
  try {
    return String(value);
  } catch {
    return '[value]';
  }
}
