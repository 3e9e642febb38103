import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The CLI's local caches (files cache) during a test run: a folder of the run, never the user's ~/.cache. */
export const TEST_CACHE_DIR = join(tmpdir(), `dp-test-cache-${process.pid}`);

/** Vitest's global setup: the run's cache folder goes when the run ends. */
export default function setup(): () => Promise<void> {
  return () => rm(TEST_CACHE_DIR, { recursive: true, force: true });
}
