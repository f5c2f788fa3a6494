import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** Fails the run on any skipped/todo test and prints `suite <name>: passed N, failed N, skipped N`. */
const strict = fileURLToPath(new URL('../scripts/test-guards/vitest-strict-reporter.mjs', import.meta.url));

// End to end: rtm-host + the demo's Vite server + headless Debian Chromium.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    reporters: ['default', [strict, { name: 'rtm-sdk e2e' }]],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
