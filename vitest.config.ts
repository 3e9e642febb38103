import { defineConfig } from 'vitest/config';

// One node project for every suite; browser suites drive Debian's chromium through playwright-core themselves.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'server/**/*.test.ts', 'plugin/**/*.test.ts', 'ui-components/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
