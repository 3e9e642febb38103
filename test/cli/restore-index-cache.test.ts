import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { runCli } from '../engine/cli-helpers.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repoDir: string;
let src: string;
beforeEach(async () => {
  dir = await tempDir('dp-cli-icache-');
  repoDir = join(dir.path, 'repo');
  src = join(dir.path, 'spool');
  for (const user of ['alice', 'bob']) {
    await mkdir(join(src, user, 'cur'), { recursive: true });
    for (let i = 0; i < 6; i++) await writeFile(join(src, user, 'cur', `m${i}:2,`), bytesOf(i + user.length * 10, 5000, true));
  }
});
afterEach(async () => {
  await dir.cleanup();
});

/** The index files of the repository, wherever its layout puts them. */
async function indexFiles(): Promise<string[]> {
  const root = join(repoDir, 'index');
  return (await readdir(root, { recursive: true })).filter((n) => /^[0-9a-f]{64}$/.test(n.split('/').pop()!)).map((n) => join(root, n));
}

test('restore --include looks the index up in the local cache it made: the index files are not read again', async () => {
  const cache = join(dir.path, 'cache');
  const env = { DP_CACHE_DIR: cache };
  expect((await runCli(['repo', 'init', '--repo', repoDir])).code).toBe(0);
  expect((await runCli(['backup', '--repo', repoDir, '--tag', 'mail/imap', '--server', 'mail1', src], { env })).code).toBe(0);
  const restoreBob = (target: string, e: NodeJS.ProcessEnv) => runCli(['restore', 'latest', '--repo', repoDir, '--include', join(src, 'bob'), '--target', target, '--json'], { env: e });

  const first = await restoreBob(join(dir.path, 'out1'), env);
  expect(first.code, first.stderr).toBe(0);
  expect(await manifest(join(dir.path, 'out1', src, 'bob'))).toEqual(await manifest(join(src, 'bob')));
  // The one repository's folder of caches (its id), and its index cache in it.
  const [repoCache] = await readdir(cache);
  const cacheFile = join(cache, repoCache, 'index');
  expect((await stat(cacheFile)).mode & 0o777).toBe(0o600);

  // Every index file made unreadable as an index (same name, other bytes): a restore that read them would fail.
  for (const f of await indexFiles()) await writeFile(f, 'not an index');
  const second = await restoreBob(join(dir.path, 'out2'), env);
  expect(second.code, second.stderr).toBe(0);
  expect(await manifest(join(dir.path, 'out2', src, 'bob'))).toEqual(await manifest(join(src, 'bob')));
  // Without the cache (another cache folder), the same restore reads them, and finds the damage.
  const uncached = await restoreBob(join(dir.path, 'out3'), { DP_CACHE_DIR: join(dir.path, 'other-cache') });
  expect(uncached.code).not.toBe(0);
  expect(uncached.stderr).toMatch(/does not match its name/);
});
