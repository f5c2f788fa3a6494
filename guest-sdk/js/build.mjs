#!/usr/bin/env node
// Builds one JavaScript (or TypeScript) rtm plugin into a WebAssembly component.
//
//   node guest-sdk/js/build.mjs <entry.js|entry.ts> -o <out.wasm> [--define NAME=value]...
//
// 1. esbuild bundles the entry, this SDK (`import ... from '@rtm/guest'`) and
//    any relative or npm imports into one ES module; `rtm:plugin/*` imports
//    stay external (they are the component's WIT imports). `--define NAME=v`
//    inlines the identifier NAME as the string "v" (build-time constants such
//    as the chat plugin's RTM_CHAT_MARK).
// 2. componentize-js turns that module into a component of world
//    `rtm:plugin/plugin@0.1.0` (wit/ at the repository root, or --wit DIR),
//    with WASI http and fetch-event disabled: the host links WASI p2 without
//    wasi:http.
// 3. The component is written next to the output as a dot-file and renamed
//    into place, so a host watching that directory never sees half a file.
//
// Needs `npm ci` in guest-sdk/js once (plugins/build-polyglot.sh does it).

import { copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const sdkDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(sdkDir, '../..');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string', short: 'o' },
    define: { type: 'string', multiple: true, default: [] },
    wit: { type: 'string', default: join(repoRoot, 'wit') },
    'world-name': { type: 'string', default: 'plugin' },
    'keep-bundle': { type: 'boolean', default: false },
    quiet: { type: 'boolean', short: 'q', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help || positionals.length !== 1 || !values.out) {
  console.error('usage: node guest-sdk/js/build.mjs <entry.js|.ts> -o <out.wasm> [--define NAME=value]... [--wit DIR] [--keep-bundle]');
  process.exit(values.help ? 0 : 2);
}

let esbuild;
let componentize;
try {
  esbuild = await import('esbuild');
  ({ componentize } = await import('@bytecodealliance/componentize-js'));
} catch (e) {
  console.error(`build.mjs: toolchain missing (${e.code ?? e.message}); run: npm ci --prefix ${sdkDir}`);
  process.exit(1);
}

const entry = resolve(positionals[0]);
const out = resolve(values.out);
const say = values.quiet ? () => {} : (msg) => console.error(`[build.mjs] ${msg}`);

const define = {};
for (const d of values.define) {
  const eq = d.indexOf('=');
  if (eq <= 0) {
    console.error(`--define wants NAME=value, got ${JSON.stringify(d)}`);
    process.exit(2);
  }
  define[d.slice(0, eq)] = JSON.stringify(d.slice(eq + 1));
}

const started = Date.now();
const work = await mkdtemp(join(tmpdir(), 'rtm-jsbuild-'));
try {
  const bundlePath = join(work, 'bundle.js');
  await esbuild.build({
    entryPoints: [entry],
    outfile: bundlePath,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    external: ['rtm:*'],
    alias: { '@rtm/guest': join(sdkDir, 'src/index.js') },
    define,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const bundleBytes = (await stat(bundlePath)).size;
  say(`bundled ${basename(entry)} (${bundleBytes} bytes) in ${Date.now() - started} ms`);
  if (values['keep-bundle']) {
    await mkdir(dirname(out), { recursive: true });
    await copyFile(bundlePath, `${out}.bundle.js`);
  }

  const t = Date.now();
  const { component } = await componentize({
    sourcePath: bundlePath,
    witPath: resolve(values.wit),
    worldName: values['world-name'],
    disableFeatures: ['http', 'fetch-event'],
  });
  say(`componentized in ${Date.now() - t} ms`);

  await mkdir(dirname(out), { recursive: true });
  const tmpOut = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  await writeFile(tmpOut, component);
  await rename(tmpOut, out);
  say(`wrote ${out} (${component.length} bytes, ${Date.now() - started} ms total)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
