// Generates TypeScript declarations for the guest side of `wit/` (world
// `plugin`) into `types/wit/`: one `declare module 'rtm:plugin/<iface>@0.1.0'`
// per imported interface plus the `handler` export's types.
//
// This is `jco guest-types ../../wit -n plugin -o types/wit`, except that jco
// 1.35 runs its WIT parser as a WASI component whose filesystem shim
// (preview2-shim 0.26) starts with no preopened directories, so the CLI
// cannot read any WIT path ("No such file or directory"). We preopen `/`
// ourselves, then call the same generator.
//
// Usage (from guest-sdk/js): npm run types:wit
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const witDir = resolve(root, '../../wit');
const outDir = join(root, 'types/wit');

// Find the preview2-shim instance jco-transpile itself loads (ES modules are
// singletons per file, so we must configure that very file).
const transpileEntry = fileURLToPath(import.meta.resolve('@bytecodealliance/jco-transpile'));
const transpileDir = resolve(dirname(transpileEntry), '..');
const shimCandidates = [
  join(transpileDir, 'node_modules/@bytecodealliance/preview2-shim'),
  join(root, 'node_modules/@bytecodealliance/preview2-shim'),
];
const shimDir = shimCandidates.find((dir) => existsSync(join(dir, 'package.json')));
if (!shimDir) throw new Error('preview2-shim not found next to jco-transpile');
const { _setPreopens } = await import(pathToFileURL(join(shimDir, 'dist/nodejs/filesystem.js')).href);
_setPreopens({ '/': '/' });

const { generateGuestTypes } = await import('@bytecodealliance/jco-transpile');
const files = await generateGuestTypes(witDir, { worldName: 'plugin', name: 'plugin' });
for (const [name, source] of Object.entries(files)) {
  const path = join(outDir, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, source);
  console.log(`wrote ${path.slice(root.length + 1)}`);
}
