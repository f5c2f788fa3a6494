import { defineConfig } from 'vitest/config';

// Unit tests: no network, no host; the socket is a scripted fake.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
  },
});
