// XState v5 history: `resume` goes through deep history to the exact leaf, `restart` through
// shallow history to the remembered child of `playing`, entered at its initial descendant.
import { createMachine } from "xstate5";

export const allowRead = () => true;

export const allowWrite = () => true;

export default createMachine({
  id: "player",
  initial: "stopped",
  states: {
    stopped: {
      on: { play: "playing.shallow" },
    },
    playing: {
      initial: "inOrder",
      tags: ["audible"],
      states: {
        inOrder: {
          on: { shuffle: "shuffled" },
        },
        shuffled: {
          initial: "album",
          states: {
            album: { on: { widen: "library" } },
            library: { tags: ["everything"], on: { narrow: "album" } },
          },
          on: { unshuffle: "inOrder" },
        },
        shallow: { type: "history", history: "shallow" },
        deep: { type: "history", history: "deep" },
      },
      on: {
        pause: "paused",
        stop: "stopped",
      },
    },
    paused: {
      on: {
        resume: "playing.deep",
        restart: "playing.shallow",
        stop: "stopped",
      },
    },
  },
});
