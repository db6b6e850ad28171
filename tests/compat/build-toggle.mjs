// Builds examples/quickstart/toggle.ts into one ES module that imports `npm:xstate`, with the
// esbuild flags newer smply releases use for `--js`. smply 0.1.18 uploads a `--js` file as it
// is, so the file handed to it must already be built.
//
//   node build-toggle.mjs OUT_FILE
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const out = process.argv[2];
if (!out) {
  console.error("usage: node build-toggle.mjs OUT_FILE");
  process.exit(2);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

await esbuild.build({
  entryPoints: [join(repo, "examples", "quickstart", "toggle.ts")],
  outfile: out,
  bundle: true,
  platform: "browser",
  format: "esm",
  minify: true,
  keepNames: true,
  legalComments: "none",
  drop: ["debugger"],
  define: { "process.env.NODE_ENV": '"production"' },
  external: ["npm:xstate"],
  alias: { xstate: "npm:xstate" },
  logLevel: "error",
});
