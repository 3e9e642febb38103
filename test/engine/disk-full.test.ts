import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, check, prune, Repository, restore, type SnapshotInfo } from '../../server/engine/index.js';
import { MemoryStorage } from '../../server/storage/index.js';
import { LimitedStorage } from '../storage/limited-storage.js';
import { bytesOf, manifest, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let storage: LimitedStorage;
let repo: Repository;

beforeEach(async () => {
  dir = await tempDir('dp-full-');
  storage = new LimitedStorage(new MemoryStorage(), Number.MAX_SAFE_INTEGER);
  repo = await Repository.init(storage);
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function backup(name: string, files: Record<string, Buffer>): Promise<SnapshotInfo> {
  const src = join(dir.path, name);
  await mkdir(src);
  for (const [f, data] of Object.entries(files)) await writeFile(join(src, f), data);
  const a = new Archiver(repo, { server: 's', tag: 'files' });
  try {
    await a.addTree('/data', src);
    return await a.commit();
  } catch (err) {
    await a.abort();
    throw err;
  }
}

describe('a full repository disk', () => {
  test('a backup stops with "the repository\'s disk is full", and blames no source file', async () => {
    // Small packs, so that they are written (and fail) while files are still being read.
    await repo.close();
    storage = new LimitedStorage(new MemoryStorage(), Number.MAX_SAFE_INTEGER);
    repo = await Repository.init(storage, { packSize: 64 * 1024 });
    storage.capacity = (await storage.used()) + 100_000;
    const errors: string[] = [];
    const src = join(dir.path, 'big');
    await mkdir(src);
    // The packs of the first folders fail; the files of the folders read after them meet that failure.
    for (let d = 0; d < 10; d++) {
      await mkdir(join(src, `f${d}`));
      for (let i = 0; i < 10; i++) await writeFile(join(src, `f${d}`, `m${i}`), bytesOf(d * 100 + i + 1, 50_000));
    }
    const a = new Archiver(repo, { server: 's', tag: 'files', progress: { error: (p) => errors.push(p) } });
    const run = (async () => {
      await a.addTree('/data', src);
      return a.commit();
    })();
    await expect(run).rejects.toThrow(/the repository's disk is full \(\d+ bytes free\)/);
    await a.abort();
    expect(errors).toEqual([]);
    expect(await repo.listSnapshots()).toEqual([]);
  });

  test('prune frees space on a full disk: unused packs go before anything is rewritten', async () => {
    // One codec worker, so that the two files of the second backup share a pack (each worker fills its own).
    await repo.close();
    const workers = process.env.DP_BACKUP_WORKERS;
    process.env.DP_BACKUP_WORKERS = '1';
    repo = await Repository.open(storage);
    try {
      await pruneOnAFullDisk();
    } finally {
      if (workers === undefined) delete process.env.DP_BACKUP_WORKERS;
      else process.env.DP_BACKUP_WORKERS = workers;
    }
  });

  async function pruneOnAFullDisk(): Promise<void> {
    const s1 = await backup('one', { gone: bytesOf(1, 1_000_000) });
    const s2 = await backup('two', { gone2: bytesOf(2, 1_000_000), stays: bytesOf(3, 1_000_000) });
    const s3 = await backup('three', { stays: bytesOf(3, 1_000_000) });
    const before = await manifest(join(dir.path, 'three'));
    await repo.deleteSnapshot(s1.id);
    await repo.deleteSnapshot(s2.id);
    // Room for locks and index files, not for a repacked pack (1 MB) until the unused one (1 MB) is gone.
    storage.capacity = (await storage.used()) + 50_000;
    const p = await prune(repo, { grace: 0 });
    expect(storage.writesRefused).toBe(0);
    expect(p.packsRepacked).toBe(1);
    expect(p.bytesFreed).toBeGreaterThan(2_000_000);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    const target = join(dir.path, 'out');
    const r = await restore(repo, s3, { target });
    expect(r.errors).toBe(0);
    expect(await manifest(join(target, 'data'))).toEqual(before);
  }

  test('check --read-data reports a pack whose bytes do not match its name, even one no index lists', async () => {
    await backup('one', { f: bytesOf(1, 10_000) });
    const name = 'ab'.repeat(32);
    await storage.write('data', name, Buffer.from('a pack cut short by a full disk'));
    const plain = await check(repo);
    expect(plain.errors).toEqual([]);
    const full = await check(repo, { readData: true });
    expect(full.errors.some((e) => e.startsWith(`pack ${name.slice(0, 12)}: content does not match its name`))).toBe(true);
    expect(await readdir(dir.path)).toContain('one');
  });
});
