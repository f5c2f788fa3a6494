import { defineConfig } from 'tsup';

// ESM only: browsers and bundlers consume ESM, and Node >= 20 imports it
// natively. socket.io-client stays external (it is a dependency), so apps
// share one copy with anything else that uses it.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'es2022',
  platform: 'neutral',
  dts: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  external: ['socket.io-client'],
});
