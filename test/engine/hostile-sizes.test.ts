import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compress } from 'zstd-napi';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, check, restore, RepositoryDamagedError, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { forgePack, saveForgedSnapshot } from './forge.js';
import { bytesOf, newRepo, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let snap: SnapshotInfo;

beforeEach(async () => {
  dir = await tempDir('dp-hostile-');
  repo = await newRepo(dir.path);
  const src = join(dir.path, 'src');
  await mkdir(src);
  await writeFile(join(src, 'note'), 'a genuine file');
  const a = new Archiver(repo, { server: 's', tag: 'files' });
  await a.addTree('/t', src);
  snap = await a.commit();
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

const fileNode = (ids: string[], size: number) => ({ node: { type: 'file' as const, size, content: ids } });

describe('check rejects what restore rejects', () => {
  test('a 1,000-byte blob declaring 4 GiB once decompressed: check --read-data reports it, restore refuses it', async () => {
    const raw = bytesOf(1, 1000, true);
    const [id] = await forgePack(repo, [{ raw, stored: compress(raw), zstd: true, rawLength: 0xffffffff }]);
    const forged = await saveForgedSnapshot(repo, snap, { big: fileNode([id], 0xffffffff) });
    const c = await check(repo, { readData: true });
    expect(c.errors.some((e) => e.includes('declares 4294967295 bytes'))).toBe(true);
    const target = join(dir.path, 'out');
    const r = await restore(repo, forged, { target });
    expect(r.damage.some((d) => d.includes('declares 4294967295 bytes'))).toBe(true);
    expect(await readdir(target)).toEqual([]);
  });

  test('an uncompressed blob declaring another raw length, and a file whose blobs do not add up to its size', async () => {
    const raw = bytesOf(2, 1000);
    const [id] = await forgePack(repo, [{ raw, stored: raw, zstd: false, rawLength: 5000 }]);
    const [id2] = await forgePack(repo, [{ raw: bytesOf(3, 100), stored: bytesOf(3, 100), zstd: false, rawLength: 100 }]);
    const forged = await saveForgedSnapshot(repo, snap, { liar: fileNode([id], 5000), short: fileNode([id2], 4000) });
    const c = await check(repo, { readData: true });
    expect(c.errors.some((e) => e.includes('stored uncompressed in 1000 bytes but declares 5000'))).toBe(true);
    expect(c.errors.some((e) => e.includes('/short: content is 100 bytes, the tree says 4000'))).toBe(true);
    const r = await restore(repo, forged, { target: join(dir.path, 'out') });
    expect(r.files).toBe(0);
    expect(r.damage).toHaveLength(2);
  });

  test.each([
    ['a bad mtime', { mtime: 'yesterday' }, 'bad mtime'],
    ['a bad mode', { mode: 0o170777 }, 'bad mode'],
    ['content of the wrong type', { content: 'not a list' as unknown as string[] }, 'content is not a list of blob ids'],
    ['an unknown type', { type: 'door' as 'file' }, 'unknown type'],
  ])('a tree node with %s: check reports it and restore refuses the tree', async (_what, fields, message) => {
    const forged = await saveForgedSnapshot(repo, snap, { bad: { node: { type: 'file', ...fields } } });
    const c = await check(repo);
    expect(c.errors.some((e) => e.includes(message))).toBe(true);
    await expect(restore(repo, forged, { target: join(dir.path, 'out') })).rejects.toThrow(RepositoryDamagedError);
    await expect(restore(repo, forged, { target: join(dir.path, 'out') })).rejects.toThrow(message);
  });

  test('a few KiB of zstd bombs make neither check nor restore allocate what they declare', async () => {
    // 4 blobs of 32 MiB of zeros (each a few KiB stored), declared truthfully: more than this repository's
    // chunkers ever cut (8 MiB), so refused before any decompression.
    const zeros = Buffer.alloc(32 * 1024 * 1024);
    const bombs = [0, 1, 2, 3].map((i) => {
      zeros[zeros.length - 1] = i;
      return { raw: Buffer.from(zeros), stored: compress(zeros), zstd: true, rawLength: zeros.length };
    });
    const ids = await forgePack(repo, bombs);
    const storedBytes = bombs.reduce((a, b) => a + b.stored.length, 0);
    expect(storedBytes).toBeLessThan(64 * 1024);
    bombs.length = 0;
    const forged = await saveForgedSnapshot(repo, snap, { bomb: fileNode(ids, ids.length * zeros.length) });

    const before = process.memoryUsage();
    const c = await check(repo, { readData: true });
    const target = join(dir.path, 'out');
    const r = await restore(repo, forged, { target });
    const after = process.memoryUsage();
    expect(c.errors.filter((e) => e.includes("more than this repository's largest chunk")).length).toBeGreaterThanOrEqual(4);
    expect(r.damage.length).toBe(1);
    expect(await readdir(target)).toEqual([]);
    expect(after.rss - before.rss).toBeLessThan(64 * 1024 * 1024);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(64 * 1024 * 1024);
  });
});
