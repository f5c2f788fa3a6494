// Reports the SDK's shipped size: the ESM build minified and gzipped, on its
// own (socket.io-client is a peer at runtime, shared with the app) and with
// socket.io-client bundled in (what a page that uses nothing else pays).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));

async function measure(external) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external,
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].contents;
  return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
}

const own = await measure(['socket.io-client']);
const all = await measure([]);
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`rtm-sdk alone:                 ${kb(own.min)} min, ${kb(own.gz)} min+gz (${own.gz} bytes)`);
console.log(`rtm-sdk + socket.io-client:    ${kb(all.min)} min, ${kb(all.gz)} min+gz (${all.gz} bytes)`);
