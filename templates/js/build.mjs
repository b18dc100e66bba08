// Builds the connector component with componentize-js's API (not `jco componentize`, whose
// WIT path handling fails on a WIT file in a sub-folder). Settings come from package.json's
// "connector" field: `entry` (the module exporting `api`), `wit` (the contract file),
// `out` (the .wasm written) and `root` (the folder the engine may read modules from at
// build time: it must hold every module the entry imports).
//
//   node build.mjs [OUT]   (npm run build)
//
// COMPONENTIZE_JS_HOME, when set, names a folder whose node_modules holds componentize-js
// (the repository's tests install it under target/tools/js); else it is found as usual.
import { readFile, writeFile, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { connector } = JSON.parse(await readFile(join(here, 'package.json'), 'utf8'));
const home = process.env.COMPONENTIZE_JS_HOME;
const { componentize } = await import(
  home
    ? pathToFileURL(join(resolve(home), 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href
    : '@bytecodealliance/componentize-js'
);

const out = resolve(process.argv[2] ?? join(here, connector.out));
const started = Date.now();
// Modules are read relative to the working directory (when the entry is inside it), so the
// build runs from `root`.
process.chdir(resolve(here, connector.root ?? '.'));
const { component } = await componentize({
  sourcePath: resolve(here, connector.entry),
  witPath: resolve(here, connector.wit),
  worldName: 'connector',
  // No WASI at all: the host links none of wasi:http (with `http` or `fetch-event` on, it
  // refuses the component: `wasi:http/types` is not linked) and grants nothing else.
  disableFeatures: ['http', 'fetch-event', 'stdio', 'random', 'clocks'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
console.log(`built ${out}: ${component.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
