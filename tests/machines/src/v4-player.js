// A music player with shallow and deep history: `resume` returns to the exact leaf that was
// playing, `restart` only to the child of `playing` that was active (entering its initial
// descendant).
import { createMachine } from "xstate";

export const allowRead = () => true;

export const allowWrite = () => true;

export default createMachine({
  id: "player",
  predictableActionArguments: true,
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
