import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, prune, Repository, restore, type SnapshotInfo } from '../../server/engine/index.js';
import { findNode, openFile, walkTree } from '../../server/engine/reader.js';
import { randomBytes } from 'node:crypto';
import { BlobIndex, BlobType } from '../../server/engine/blob-index.js';
import { IndexCache, IndexCacheDamagedError, indexCachePath } from '../../server/engine/index-cache.js';
import type { FileType } from '../../server/engine/storage.js';
import { LocalStorage } from '../../server/storage/index.js';
import { bytesOf, manifest, tempDir } from './helpers.js';

/** A local repository that counts the index files read from it. */
class CountingStorage extends LocalStorage {
  indexReads = 0;
  override read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    if (type === 'index') this.indexReads++;
    return super.read(type, name, offset, length);
  }
}

let dir: { path: string; cleanup: () => Promise<void> };
let repoDir: string;
let src: string;
let cacheDir: string;
let notices: string[];
const open: Repository[] = [];

beforeEach(async () => {
  dir = await tempDir('dp-icache-');
  repoDir = join(dir.path, 'repo');
  src = join(dir.path, 'spool');
  cacheDir = join(dir.path, 'cache');
  notices = [];
  for (const user of ['alice', 'bob', 'carol']) {
    await mkdir(join(src, user, 'cur'), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(src, user, 'cur', `m${i}:2,`), bytesOf(i + user.length * 100, 3000 + i * 500, true));
  }
  const repo = await Repository.init(new LocalStorage(repoDir), { packSize: 16 * 1024 });
  open.push(repo);
});
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  await dir.cleanup();
});

async function backup(): Promise<SnapshotInfo> {
  const repo = await Repository.open(new LocalStorage(repoDir));
  open.push(repo);
  const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
  await a.addTree('/spool', src);
  return a.commit();
}

/** The repository opened as `restore` opens it: the index through the cache. */
async function openCached(): Promise<{ repo: Repository; storage: CountingStorage }> {
  const storage = new CountingStorage(repoDir);
  const repo = await Repository.open(storage, { indexCache: cacheDir, notice: (m) => notices.push(m) });
  open.push(repo);
  return { repo, storage };
}

/** Restores one user's folder of `snap` and checks it against the source. */
async function restoresUser(repo: Repository, snap: SnapshotInfo, user: string): Promise<void> {
  const out = join(dir.path, `out-${Math.random().toString(36).slice(2)}`);
  const s = await restore(repo, snap, { target: out, include: [`/spool/${user}`] });
  expect(s.errors).toBe(0);
  expect(s.damage).toEqual([]);
  expect(await manifest(join(out, 'spool', user))).toEqual(await manifest(join(src, user)));
}

async function cacheFile(repo: Repository): Promise<string> {
  return indexCachePath(cacheDir, repo.config.id);
}

/** Where the cache's sections are, from its header (index-cache.ts). */
async function layout(path: string): Promise<{ recordsAt: number; packsAt: number; blobs: number; packs: number; size: number }> {
  const f = await readFile(path);
  const magic = 'bm-dataprotect index cache 2\n'.length;
  const covered = f.readUInt32LE(magic);
  const at = magic + 4 + covered * 32;
  const blobs = f.readUInt32LE(at);
  const packs = f.readUInt32LE(at + 4);
  const bits = f.readUInt32LE(at + 8);
  const recordsAt = at + 12 + 64 + 32 + (2 ** bits + 1) * 12;
  return { recordsAt, packsAt: recordsAt + blobs * 50, blobs, packs, size: f.length };
}

describe('the index cache of restores', () => {
  test('made on first use (owner-only), then a restore reads no index file at all', async () => {
    const snap = await backup();
    const first = await openCached();
    expect(first.storage.indexReads).toBeGreaterThan(0);
    await restoresUser(first.repo, snap, 'bob');
    const path = await cacheFile(first.repo);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(path, '..'))).mode & 0o777).toBe(0o700);

    const again = await openCached();
    expect(again.storage.indexReads).toBe(0);
    await restoresUser(again.repo, snap, 'bob');
    await restoresUser(again.repo, snap, 'carol');
    expect(again.repo.index.size).toBeLessThan((await layout(path)).blobs);
    expect(notices).toEqual([]);
  });

  test('index files written after it (later backups) are read on top of it', async () => {
    await backup();
    await (await openCached()).repo.close();
    await writeFile(join(src, 'alice', 'cur', 'new:2,'), bytesOf(999, 40_000, true));
    const snap = await backup();
    const indexFiles = (await readdir(join(repoDir, 'index'), { recursive: true })).filter((n) => /^[0-9a-f]{64}$/.test(n.split('/').pop()!));
    expect(indexFiles.length).toBe(2);
    const { repo, storage } = await openCached();
    expect(storage.indexReads).toBe(1);
    await restoresUser(repo, snap, 'alice');
  });

  test('a prune that rewrites index files makes it stale: made again from the index files', async () => {
    const old = await backup();
    await (await openCached()).repo.close();
    for (const f of await readdir(join(src, 'carol', 'cur'))) if (f.startsWith('m1')) await writeFile(join(src, 'carol', 'cur', f), bytesOf(7, 5000, true));
    const snap = await backup();
    const pruner = await Repository.open(new LocalStorage(repoDir));
    open.push(pruner);
    await pruner.deleteSnapshot(old.id);
    await prune(pruner, { grace: 0, repackThreshold: 0 });
    const { repo, storage } = await openCached();
    expect(storage.indexReads).toBeGreaterThan(0);
    await restoresUser(repo, snap, 'carol');
    const after = await openCached();
    expect(after.storage.indexReads).toBe(0);
    await restoresUser(after.repo, snap, 'carol');
  });

  test.each([
    ['its records', 'records'],
    ['its pack entries', 'packs'],
  ] as const)('a cache damaged in %s is dropped: the restore reads the index files and is whole', async (_what, where) => {
    const snap = await backup();
    const first = await openCached();
    const path = await cacheFile(first.repo);
    await first.repo.close();
    const l = await layout(path);
    const f = await readFile(path);
    if (where === 'records') for (let at = l.recordsAt + 40; at < l.packsAt; at += 50) f[at] ^= 0x5a;
    else for (let at = l.packsAt + 3; at < l.size; at += 72) f[at] ^= 0x5a;
    await writeFile(path, f);
    const { repo, storage } = await openCached();
    expect(storage.indexReads).toBe(0);
    await restoresUser(repo, snap, 'alice');
    expect(storage.indexReads).toBeGreaterThan(0);
    expect(notices.join('\n')).toMatch(/damaged.*reading the index files instead/);
    // Made again, whole.
    const again = await openCached();
    expect(again.storage.indexReads).toBe(0);
    await restoresUser(again.repo, snap, 'carol');
  });

  test('a cache with a damaged header, or truncated, is not used', async () => {
    const snap = await backup();
    const first = await openCached();
    const path = await cacheFile(first.repo);
    const f = await readFile(path);
    f[40] ^= 1;
    await writeFile(path, f);
    const damaged = await openCached();
    expect(damaged.storage.indexReads).toBeGreaterThan(0);
    expect(notices.join('\n')).toMatch(/header checksum does not match/);
    await restoresUser(damaged.repo, snap, 'bob');
    await writeFile(path, (await readFile(path)).subarray(0, 200));
    const truncated = await openCached();
    expect(truncated.storage.indexReads).toBeGreaterThan(0);
    await restoresUser(truncated.repo, snap, 'bob');
  });

  test('a blob that no index holds is still damage, as without the cache', async () => {
    const snap = await backup();
    await (await openCached()).repo.close();
    const { repo } = await openCached();
    const missing = '00'.repeat(32);
    expect(() => repo.blobLocation(missing)).toThrow(/not in any index/);
    await repo.lookUp([missing]);
    expect(() => repo.blobLocation(missing)).toThrow(/not in any index/);
    await restoresUser(repo, snap, 'alice');
  });

  test('a file read by ranges through it (a dump, container by container) gives the bytes of those ranges', async () => {
    const bytes = bytesOf(42, 600_000, true);
    const repo0 = await Repository.open(new LocalStorage(repoDir));
    open.push(repo0);
    const a = new Archiver(repo0, { server: 'db1', tag: 'bm/pgsql' });
    await a.addStream('/dump.bin', [bytes]);
    const snap = await a.commit();
    await (await openCached()).repo.close();
    const { repo, storage } = await openCached();
    const node = await findNode(repo, snap, '/dump.bin');
    const lengths = await repo.rawLengths(node.content!);
    expect(lengths.reduce((x, y) => x + y, 0)).toBe(bytes.length);
    for (const [start, end] of [[0, 10], [123_457, 300_001], [599_990, 600_000], [5000, 5000]]) {
      const got = Buffer.concat(await openFile(repo, snap, '/dump.bin', { start, end }).toArray());
      expect(got.equals(bytes.subarray(start, end))).toBe(true);
    }
    expect(storage.indexReads).toBe(0);
    // The same lengths as each blob's location gives; a blob no index holds is damage.
    expect([...lengths]).toEqual(node.content!.map((id) => repo.blobLocation(id).rawLength));
    await expect(repo.rawLengths([...node.content!, '00'.repeat(32)])).rejects.toThrow(/not in any index/);
    await expect(repo.rawLengths(['../../etc'])).rejects.toThrow(/no index can hold/);
    // As long as an id, not hex all along: hex decoding stops short of a whole id.
    await expect(repo.rawLengths([node.content![0].slice(0, 62) + 'zz'])).rejects.toThrow(/no index can hold/);
  });

  test('lengths asked of a damaged cache come from the index files instead', async () => {
    const snap = await backup();
    const first = await openCached();
    const expected = new Map<string, number>();
    for await (const { node } of walkTree(first.repo, snap.tree)) for (const id of node.content ?? []) expected.set(id, first.repo.blobLocation(id).rawLength);
    const path = await cacheFile(first.repo);
    await first.repo.close();
    const l = await layout(path);
    const f = await readFile(path);
    for (let at = l.recordsAt + 44; at < l.packsAt; at += 50) f[at] ^= 0x5a;
    await writeFile(path, f);
    const { repo, storage } = await openCached();
    const lengths = await repo.rawLengths([...expected.keys()]);
    expect([...lengths]).toEqual([...expected.values()]);
    expect(storage.indexReads).toBeGreaterThan(0);
    expect(notices.join('\n')).toMatch(/damaged.*reading the index files instead/);
  });

  test('an encrypted repository keeps no cache outside it', async () => {
    const encDir = join(dir.path, 'enc');
    const enc = await Repository.init(new LocalStorage(encDir), { password: 'pw', scrypt: { N: 1024, r: 8, p: 1 } });
    open.push(enc);
    const a = new Archiver(enc, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const snap = await a.commit();
    const repo = await Repository.open(new LocalStorage(encDir), { password: 'pw', indexCache: cacheDir });
    open.push(repo);
    await restoresUser(repo, snap, 'alice');
    await expect(stat(indexCachePath(cacheDir, repo.config.id))).rejects.toThrow(/ENOENT/);
  });
});

/** The ids whose location `get` gives otherwise than the index (hex), for one assertion over many blobs. */
function differing(index: BlobIndex, get: (id: Buffer) => unknown): string[] {
  const out: string[] = [];
  for (const [id, loc] of index.entries()) if (JSON.stringify(get(id)) !== JSON.stringify(loc)) out.push(id.toString('hex'));
  return out;
}

// 150,000 blobs: the records are written in several slices (64 Ki records each).
test('looked up in buckets, it finds every blob of a large index where the index does, and no other', async () => {
  const index = new BlobIndex();
  const packs = Array.from({ length: 7 }, () => randomBytes(32).toString('hex'));
  const dictionary = randomBytes(32).toString('hex');
  for (let i = 0; i < 150_000; i++) {
    const pack = packs[i % packs.length];
    index.add(randomBytes(32), { pack, type: i % 5 === 0 ? BlobType.Tree : BlobType.Data, zstd: i % 3 !== 0, ...(pack === packs[6] && i % 3 !== 0 ? { dictionary } : {}), offset: i * 100, length: 90, rawLength: 300 + i });
  }
  const path = join(dir.path, 'cache', 'index');
  await IndexCache.write(path, index, ['ab'.repeat(32)]);
  const cache = IndexCache.open(path)!;
  try {
    expect([...cache.covers]).toEqual(['ab'.repeat(32)]);
    expect(differing(index, (id) => cache.get(id))).toEqual([]);
    expect(differing(index, (id) => ({ ...index.get(id)!, rawLength: cache.rawLength(id) }))).toEqual([]);
    for (let i = 0; i < 100; i++) expect(cache.get(randomBytes(32))).toBeUndefined();
    for (let i = 0; i < 100; i++) expect([cache.rawLength(randomBytes(32)), index.rawLength(randomBytes(32))]).toEqual([-1, -1]);
  } finally {
    cache.close();
  }
  // The same, its records read at once for a lookup of many blobs.
  const whole = IndexCache.open(path)!;
  try {
    whole.expect(index.size);
    expect(differing(index, (id) => whole.get(id))).toEqual([]);
    expect(whole.get(randomBytes(32))).toBeUndefined();
  } finally {
    whole.close();
  }
});

test('a damaged bucket is found by the lookup that reads it, bucket by bucket or all at once', async () => {
  const index = new BlobIndex();
  const pack = randomBytes(32).toString('hex');
  for (let i = 0; i < 5000; i++) index.add(randomBytes(32), { pack, type: BlobType.Data, zstd: true, offset: i * 100, length: 90, rawLength: 300 });
  const path = join(dir.path, 'cache', 'index');
  await IndexCache.write(path, index, ['ab'.repeat(32)]);
  const l = await layout(path);
  const f = await readFile(path);
  // Every record's offset changed: a restore that trusted it would read the wrong bytes.
  for (let at = l.recordsAt + 34; at < l.packsAt; at += 50) f[at] ^= 0x01;
  await writeFile(path, f);
  const [id] = index.entries().next().value!;
  const one = IndexCache.open(path)!;
  expect(() => one.get(id)).toThrow(IndexCacheDamagedError);
  one.close();
  const all = IndexCache.open(path)!;
  expect(() => all.expect(5000)).toThrow(IndexCacheDamagedError);
  all.close();
});
