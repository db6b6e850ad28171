// The module served for `npm:xstate@5` (and `xstate5`, `xstate@5`): the pinned XState 5,
// unchanged.
export * from 'xstate5';
