import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab tests share the kernel's network namespaces and the two cores; run files one at a time
    // there so timing-sensitive tests do not starve each other.
    fileParallelism: true,
    pool: 'forks',
  },
});
