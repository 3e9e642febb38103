import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { LockHeldError } from '../../server/engine/index.js';
import { readLocks, RepositoryLock } from '../../server/engine/lock.js';
import { newRepo, tempDir } from './helpers.js';
import { runCli } from './cli-helpers.js';
import type { Repository } from '../../server/engine/index.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
beforeEach(async () => {
  dir = await tempDir('dp-locks-');
  repo = await newRepo(dir.path);
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

test('backups share the repository; prune waits for none of them and is refused while one runs', async () => {
  const a = await repo.lock(false, 'backup A');
  const b = await repo.lock(false, 'backup B');
  await expect(repo.lock(true, 'prune')).rejects.toBeInstanceOf(LockHeldError);
  await a.release();
  await b.release();
  const p = await repo.lock(true, 'prune');
  await expect(repo.lock(false, 'backup C')).rejects.toThrow(/locked exclusively by prune/);
  await p.release();
  expect(await readLocks(repo.storage)).toEqual([]);
});

test('a lock whose process is gone, or not refreshed for 30 minutes, is taken over with a message', async () => {
  const storage = repo.storage;
  const dead = { hostname: (await import('node:os')).hostname(), pid: 2 ** 22 + 12345, exclusive: true, purpose: 'prune', created: new Date().toISOString(), refreshed: new Date().toISOString() };
  await storage.write('lock', 'a'.repeat(32), Buffer.from(JSON.stringify(dead)));
  const old = { ...dead, hostname: 'other-node', pid: 1, refreshed: new Date(Date.now() - 31 * 60_000).toISOString() };
  await storage.write('lock', 'b'.repeat(32), Buffer.from(JSON.stringify(old)));
  const notices: string[] = [];
  const l = await RepositoryLock.acquire(storage, true, 'prune', (m) => notices.push(m));
  expect(notices.length).toBe(2);
  expect(notices.join('\n')).toMatch(/process is gone/);
  expect(notices.join('\n')).toMatch(/not refreshed for 31 minutes/);
  await l.release();
});

test('a fresh lock of another node is honoured, and refreshing keeps ours alive', async () => {
  const storage = repo.storage;
  const live = { hostname: 'other-node', pid: 1, exclusive: true, purpose: 'prune', created: new Date().toISOString(), refreshed: new Date(Date.now() - 29 * 60_000).toISOString() };
  await storage.write('lock', 'c'.repeat(32), Buffer.from(JSON.stringify(live)));
  await expect(RepositoryLock.acquire(storage, false, 'backup')).rejects.toBeInstanceOf(LockHeldError);
  const r = await runCli(['backup', '--repo', join(dir.path, 'repo'), '--tag', 'bm/conf', dir.path]);
  expect(r.code).toBe(11);
  expect(r.stderr).toMatch(/locked exclusively by prune \(pid 1 on other-node/);
  await storage.delete('lock', 'c'.repeat(32));

  const mine = await RepositoryLock.acquire(storage, false, 'backup');
  const later = Date.now() + 40 * 60_000;
  await mine.refresh(() => later);
  const [info] = await readLocks(storage);
  expect(Date.parse(info.info.refreshed)).toBe(later);
  await mine.release();
});
