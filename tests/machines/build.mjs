// Builds every machine in src/ the way `smply machine-versions create` builds a bundle, so the
// runtime is tested on exactly what State Backed users upload.
//
//   node build.mjs [OUT_DIR]      (default: <repo>/target/machines)
//
// Outputs, per machine NAME:
//   OUT_DIR/NAME.js           xstate left external: `npm:xstate` (v4) or `npm:xstate@5` (v5)
//   OUT_DIR/NAME.bundled.js   for the machines in OWN_XSTATE: xstate bundled in
// and OUT_DIR/quickstart/toggle.js from examples/quickstart/toggle.ts.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const outDir = resolve(process.argv[2] ?? join(repo, "target", "machines"));

/** Machines also built with their own copy of xstate inside the bundle. */
export const OWN_XSTATE = ["v4-checkout", "v5-player"];

// smply's flags: --bundle --platform=browser --format=esm --minify --keep-names
// --legal-comments=none --drop:debugger --define:process.env.NODE_ENV="production"
const smplyOptions = {
  bundle: true,
  platform: "browser",
  format: "esm",
  minify: true,
  keepNames: true,
  legalComments: "none",
  drop: ["debugger"],
  define: { "process.env.NODE_ENV": '"production"' },
  write: false,
  logLevel: "silent",
};

// smply adds --external:npm:xstate --alias:xstate=npm:xstate. Our v5 machines import the
// `xstate5` package, which the runtime provides as `npm:xstate@5`.
const externalXstate = {
  external: ["npm:xstate", "npm:xstate@5"],
  alias: { xstate: "npm:xstate", xstate5: "npm:xstate@5" },
};

async function build(entry, outFile, extra) {
  const result = await esbuild.build({ ...smplyOptions, ...extra, entryPoints: [entry] });
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, result.outputFiles[0].contents);
  return outFile;
}

export async function buildAll(out = outDir) {
  const built = [];
  const sources = readdirSync(join(here, "src"))
    .filter((f) => f.endsWith(".js"))
    .sort();
  for (const file of sources) {
    const name = basename(file, ".js");
    const entry = join(here, "src", file);
    built.push(await build(entry, join(out, `${name}.js`), externalXstate));
    if (OWN_XSTATE.includes(name)) {
      built.push(await build(entry, join(out, `${name}.bundled.js`), {}));
    }
  }
  const quickstart = join(repo, "examples", "quickstart", "toggle.ts");
  built.push(await build(quickstart, join(out, "quickstart", "toggle.js"), externalXstate));
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildAll();
  writeFileSync(join(outDir, "built.json"), JSON.stringify(built, null, 2) + "\n");
  console.log(`built ${built.length} bundles into ${outDir}`);
}
