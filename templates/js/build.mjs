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
const componentizeUrl = home
  ? pathToFileURL(join(resolve(home), 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href
  : import.meta.resolve('@bytecodealliance/componentize-js');
const { componentize } = await import(componentizeUrl);

// componentize-js 0.23.0's generated bindings measure every string a call returns one
// UTF-16 unit at a time, in the engine's interpreter, before copying it into the
// component's memory: about 0.15 µs a character (an event's `fields` JSON of 2 KB: a third
// of a millisecond per call). The same bytes, encoded natively by TextEncoder. The
// bindings come from the splicer, which componentize() calls through this object.
const { splicer } = await import(new URL('../lib/spidermonkey-embedding-splicer.js', componentizeUrl).href);
const SLOW_ENCODE = /function _utf8AllocateAndEncode\(s, realloc, memory\) \{\n[\s\S]*?\n  return res;\n\}\n/;
const FAST_ENCODE = `function _utf8AllocateAndEncode(s, realloc, memory) {
  if (typeof s !== 'string') {
    throw new TypeError('expected a string, received [' + typeof s + ']');
  }
  if (s.length === 0) { return { ptr: 1, len: 0 }; }
  const bytes = TEXT_ENCODER_UTF8.encode(s);
  const ptr = realloc(0, 0, 1, bytes.length);
  new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
  return { ptr, len: bytes.length };
}
`;
const splice = splicer.spliceBindings;
splicer.spliceBindings = (...args) => {
  const spliced = splice(...args);
  if (SLOW_ENCODE.test(spliced.jsBindings)) {
    spliced.jsBindings = spliced.jsBindings.replace(SLOW_ENCODE, FAST_ENCODE);
  } else {
    console.warn('build.mjs: no string encoder to replace in the bindings (componentize-js changed?)');
  }
  return spliced;
};

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
