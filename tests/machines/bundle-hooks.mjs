// Module resolution hooks for expected.mjs: a built bundle imports xstate as `npm:xstate` or
// `npm:xstate@5`, as State Backed's runtime provides it. Under Node those specifiers resolve to
// the same xstate modules expected.mjs itself imports, so the machine code Node runs is the very
// bundle the statewire runtime gets.
let targets = {};

export async function initialize(data) {
  targets = data;
}

export async function resolve(specifier, context, nextResolve) {
  const url = targets[specifier];
  return url ? { url, shortCircuit: true } : nextResolve(specifier, context);
}
