import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The demo playground. `npm run demo` serves it on http://localhost:4173;
 * strictPort because the README, the e2e test and people's bookmarks all
 * assume that port, so silently moving to 4174 would only confuse.
 * The demo imports `rtm-sdk` from source, so edits to src/ hot-reload.
 */
export default defineConfig({
  root: fileURLToPath(new URL('./demo', import.meta.url)),
  resolve: {
    alias: { 'rtm-sdk': fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
  },
  server: { port: 4173, strictPort: true },
  preview: { port: 4173, strictPort: true },
  // Pre-bundle up front: discovering it on first page load makes Vite reload
  // the page mid-session, which would drop the demo's connection.
  optimizeDeps: { include: ['socket.io-client'] },
  build: {
    outDir: fileURLToPath(new URL('./dist-demo', import.meta.url)),
    emptyOutDir: true,
  },
});
