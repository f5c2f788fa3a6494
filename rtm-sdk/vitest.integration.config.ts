import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** Fails the run on any skipped/todo test and prints `suite <name>: passed N, failed N, skipped N`. */
const strict = fileURLToPath(new URL('../scripts/test-guards/vitest-strict-reporter.mjs', import.meta.url));

// Integration tests spawn a real rtm-host per file (see test/support/host.ts).
// Files run one at a time: the machine is small and each host is a process.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    reporters: ['default', [strict, { name: 'rtm-sdk integration' }]],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
