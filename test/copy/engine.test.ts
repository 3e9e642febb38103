import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver, Repository, RepositoryDamagedError, restore, SnapshotCopier, type SnapshotInfo } from '../../server/engine/index.js';
import { MemoryStorage } from '../../server/storage/index.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';

// The engine's SnapshotCopier: ids carried over between repositories that name blobs alike, blobs re-encoded and
// trees rewritten between a plain and an encrypted one, nothing stored twice, and a verification that finds a
// missing pack.

const FAST = { N: 1024, r: 8, p: 1 };
let dir: { path: string; cleanup: () => Promise<void> };
let src: Repository;
let snaps: SnapshotInfo[] = [];

beforeAll(async () => {
  dir = await tempDir('dp-copy-engine-');
  const data = path.join(dir.path, 'data');
  await mkdir(path.join(data, 'sub', 'deeper'), { recursive: true });
  await writeFile(path.join(data, 'small.txt'), 'a small file\n');
  await writeFile(path.join(data, 'sub', 'big.bin'), bytesOf(7, 3 * 1024 * 1024));
  await writeFile(path.join(data, 'sub', 'deeper', 'text.txt'), bytesOf(8, 200_000, true));
  await writeFile(path.join(data, 'empty'), '');
  await symlink('sub/big.bin', path.join(data, 'link'));
  src = await Repository.init(new MemoryStorage('memory:source'));
  const backup = async () => {
    const a = new Archiver(src, { server: 'bm-master', tag: 'filehosting/data' });
    await a.addTree('/data', data);
    return a.commit({ meta: { note: 'kept as it is' } });
  };
  snaps.push(await backup());
  await writeFile(path.join(data, 'sub', 'deeper', 'text.txt'), bytesOf(9, 200_000, true));
  snaps.push(await backup());
});
afterAll(async () => {
  await src?.close();
  await dir?.cleanup();
});

async function copyAll(to: Repository): Promise<{ copier: SnapshotCopier; copied: SnapshotInfo[] }> {
  const copier = new SnapshotCopier(src, to);
  await copier.start();
  try {
    const copied: SnapshotInfo[] = [];
    for (const s of snaps) copied.push(await copier.copy(s, copier.sameIds ? {} : { parent: copied.at(-1)?.id ?? null }));
    return { copier, copied };
  } finally {
    await copier.finish();
  }
}

async function restoresAlike(to: Repository, copied: SnapshotInfo[]): Promise<void> {
  for (let i = 0; i < snaps.length; i++) {
    const a = path.join(dir.path, `a${i}`);
    const b = path.join(dir.path, `b${i}`);
    await restore(src, snaps[i], { target: a });
    await restore(to, await to.loadSnapshot(copied[i].id), { target: b });
    expect(await manifest(b)).toEqual(await manifest(a));
    await rm(a, { recursive: true });
    await rm(b, { recursive: true });
  }
}

describe('SnapshotCopier', () => {
  it('plain to plain: the same snapshot files and ids, and a second copy stores nothing', async () => {
    const to = await Repository.init(new MemoryStorage('memory:plain'));
    const { copier, copied } = await copyAll(to);
    expect(copier.sameIds).toBe(true);
    expect(copied.map((s) => s.id)).toEqual(snaps.map((s) => s.id));
    expect(copier.stats.blobsNew).toBeGreaterThan(5);
    await restoresAlike(to, copied);
    const again = await copyAll(to);
    expect([again.copier.stats.blobsNew, again.copier.stats.bytesAdded]).toEqual([0, 0]);
    const v = await again.copier.verify(copied, { readData: true });
    expect(v.blobs).toBeGreaterThan(3);
    expect(v.blobsRead).toBe(v.blobs);
    await to.close();
  });

  it('plain to encrypted: blobs re-encoded under keyed ids, trees rewritten; restores are the same; the meta is kept', async () => {
    const to = await Repository.init(new MemoryStorage('memory:encrypted'), { password: 'pw', scrypt: FAST });
    const { copier, copied } = await copyAll(to);
    expect(copier.sameIds).toBe(false);
    expect(copied[0].tree).not.toBe(snaps[0].tree);
    expect(copied[0].id).not.toBe(snaps[0].id);
    expect(copied[1].parent).toBe(copied[0].id);
    expect(copied[1].meta).toEqual({ note: 'kept as it is' });
    expect(copied[1].summary).toEqual(snaps[1].summary);
    await restoresAlike(to, copied);
    // The second snapshot shares most of its blobs with the first: stored once.
    const again = await copyAll(to);
    expect(again.copier.stats.blobsNew).toBe(0);
    await to.close();
  });

  it('verification names a pack missing from the destination', async () => {
    const storage = new MemoryStorage('memory:damaged');
    const to = await Repository.init(storage);
    const { copier, copied } = await copyAll(to);
    const packs: string[] = [];
    for await (const p of storage.list('data')) packs.push(p.name);
    for (const p of packs) await storage.delete('data', p);
    await expect(copier.verify(copied)).rejects.toThrow(RepositoryDamagedError);
    await to.close();
  });

  it('refuses to copy a repository onto itself', async () => {
    const copier = new SnapshotCopier(src, src);
    await expect(copier.start()).rejects.toThrow(/are the same repository/);
  });
});
