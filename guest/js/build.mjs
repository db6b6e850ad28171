// Builds the JavaScript assets the guest embeds, into the directory given as argument:
// - glue.js: the glue (IIFE script, evaluated once by the engine);
// - xstate4.mjs: the ES module served for `npm:xstate` (pinned XState 4, recording `spawn`);
// - xstate5.mjs: the ES module served for `npm:xstate@5` (pinned XState 5).
// A file is only rewritten when its content changes, so an unchanged build does not make cargo
// rebuild the guest.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? join(here, 'dist'));

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: 'es2022',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['module'],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  write: false,
};

const assets = [
  { entry: 'src/glue.js', out: 'glue.js', format: 'iife' },
  { entry: 'src/xstate4.js', out: 'xstate4.mjs', format: 'esm' },
  { entry: 'src/xstate5.js', out: 'xstate5.mjs', format: 'esm' },
];

mkdirSync(outDir, { recursive: true });
for (const { entry, out, format } of assets) {
  const result = await build({ ...common, entryPoints: [entry], format, outfile: join(outDir, out) });
  const [file] = result.outputFiles;
  let current = null;
  try {
    current = readFileSync(file.path, 'utf8');
  } catch {
    // Not built yet.
  }
  if (current !== file.text) writeFileSync(file.path, file.text);
}
