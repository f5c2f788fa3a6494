import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** Fails the run on any skipped/todo test and prints `suite <name>: passed N, failed N, skipped N`. */
const strict = fileURLToPath(new URL('../scripts/test-guards/vitest-strict-reporter.mjs', import.meta.url));

// Unit tests: no network, no host; the socket is a scripted fake.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    reporters: ['default', [strict, { name: 'rtm-sdk unit' }]],
  },
});
