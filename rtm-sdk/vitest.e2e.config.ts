import { defineConfig } from 'vitest/config';

// End to end: rtm-host + the demo's Vite server + headless Debian Chromium.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
