// Marks the places where machine code (XState included) runs, so that what it throws is
// reported as `machine-threw` while a failure of the glue itself stays `internal`.
import { GuestError, badInput, describe, isOutOfMemory } from './errors.js';

/** Runs machine code; a throw becomes `machine-threw` (an exhausted heap stays itself). */
export function user(fn) {
  try {
    return fn();
  } catch (error) {
    throw machineError(error);
  }
}

/** What machine code threw, as the error the ABI reports. */
export function machineError(error) {
  return rethrown(error, 'machine-threw', '');
}

/** Restores a stored snapshot; a throw means the snapshot does not fit the machine. */
export function restoring(fn) {
  try {
    return fn();
  } catch (error) {
    throw rethrown(error, 'bad-input', 'the snapshot cannot be restored: ');
  }
}

function rethrown(error, kind, prefix) {
  if (error instanceof GuestError || isOutOfMemory(error)) return error;
  return kind === 'bad-input' ? badInput(prefix + describe(error)) : new GuestError(kind, prefix + describe(error));
}
