import { defineConfig } from 'vitest/config';

// Integration tests spawn a real rtm-host per file (see test/support/host.ts).
// Files run one at a time: the machine is small and each host is a process.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
