import { defineConfig } from 'vitest/config';
import { TEST_CACHE_DIR } from './test/test-cache.js';

// One node project for every suite; browser suites drive Debian's chromium through playwright-core themselves.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'server/**/*.test.ts', 'plugin/**/*.test.ts', 'ui-components/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    environment: 'node',
    // The CLI's local caches (files cache): in a folder of the test run, never the user's ~/.cache.
    env: { DP_CACHE_DIR: TEST_CACHE_DIR },
    globalSetup: ['test/test-cache.ts'],
    // Generous: the heavy tests (a seeded host restored whole) take a minute on a quiet machine and several on
    // one busy with other work; a timeout here only catches a hang.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
