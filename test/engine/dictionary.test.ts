import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, check, openFile, prune, Repository, restore, type SnapshotInfo } from '../../server/engine/index.js';
import { BlobType } from '../../server/engine/blob-index.js';
import { blobProblem } from '../../server/engine/validate.js';
import { LocalStorage } from '../../server/storage/index.js';
import { tempDir } from './helpers.js';

// Format version 3: a stream's chunks compressed with a dictionary stored as a blob and named per pack by the
// index (FORMAT.md, "Dictionaries").

/** A dump-like stream: rows of a table, tab-separated, `changed` rows (by number) edited. */
function rows(count: number, changed: ReadonlySet<number> = new Set()): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const note = changed.has(i) ? 'moved to room 12' : 'weekly meeting';
    lines.push(`${i}\tuser${i % 997}@acme.lan\tEvent ${(i * 7919) % 100003}\t${note}\tEurope/Paris\t2026-01-${String((i % 28) + 1).padStart(2, '0')} 10:00:00\t${(i * 31) % 1000}`);
  }
  return Buffer.from(lines.join('\n') + '\n');
}

async function readAll(repo: Repository, snap: SnapshotInfo, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of openFile(repo, snap, path)) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

describe('dictionaries', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let repo: Repository;
  const storage = () => new LocalStorage(join(dir.path, 'repo'));
  beforeEach(async () => {
    dir = await tempDir('dp-dictionary-');
    repo = await Repository.init(storage());
  });
  afterEach(async () => {
    await repo.close();
    await dir.cleanup();
  });

  let made = 0;
  const sample = (data: Buffer) => async () => {
    made++;
    return data.subarray(0, 32 * 1024);
  };
  async function backup(data: Buffer, time: string): Promise<{ snap: SnapshotInfo; added: number }> {
    const a = new Archiver(repo, { server: 'db', tag: 'bm/pgsql', time: new Date(time) });
    await a.addStream('/dump/bj.pgdump', [data], { chunker: 'rows', dictionary: sample(data) });
    const snap = await a.commit();
    return { snap, added: a.summary.bytesAdded };
  }
  /** The tree of /dump in a snapshot. */
  const dumpTree = async (snap: SnapshotInfo) => (await repo.loadTree(snap.tree)).nodes.find((n) => n.name === 'dump')!.subtree!;

  /**
   * Once the `gone` snapshots are pruned, `dictionary` stays for `kept` (which a fresh process reads back as `data`
   * and checks); once `kept` goes too, nothing is left, dictionaries included.
   */
  async function pruneKeeps(dictionary: string, gone: SnapshotInfo[], kept: SnapshotInfo, data: Buffer): Promise<void> {
    for (const g of gone) await repo.deleteSnapshot(g.id);
    await prune(repo, { grace: 0, repackThreshold: 0 });
    await repo.close();
    repo = await Repository.open(storage());
    expect(repo.index.get(Buffer.from(dictionary, 'hex'))).toBeDefined();
    expect((await readAll(repo, kept, '/dump/bj.pgdump')).equals(data)).toBe(true);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    await repo.deleteSnapshot(kept.id);
    await prune(repo, { grace: 0 });
    expect(repo.index.size).toBe(0);
    expect(repo.index.dictionaries().size).toBe(0);
  }

  test('a stream compressed with a dictionary reads back byte for byte: through the index, a restore on the workers and inline, check --read-data', async () => {
    const data = rows(20_000);
    made = 0;
    const { snap } = await backup(data, '2026-01-01T00:00:00Z');
    expect(repo.config.version).toBe(3);
    expect(made).toBe(1);
    const tree = await repo.loadTree(snap.tree);
    const dumpDir = tree.nodes.find((n) => n.name === 'dump')!;
    const node = (await repo.loadTree(dumpDir.subtree!)).nodes[0];
    expect(node.dictionary).toMatch(/^[0-9a-f]{64}$/);
    // Every chunk of the stream is in a pack of that dictionary, and it compressed them: smaller than alone.
    const locs = node.content!.map((id) => repo.blobLocation(id));
    expect(locs.every((l) => l.dictionary === node.dictionary)).toBe(true);
    expect(repo.index.dictionaries()).toEqual(new Set([node.dictionary]));

    // A fresh process: the dictionary is read from the repository when a blob needs it.
    await repo.close();
    repo = await Repository.open(storage());
    expect((await readAll(repo, snap, '/dump/bj.pgdump')).equals(data)).toBe(true);
    for (const inline of [true, false]) {
      const target = join(dir.path, `restored-${inline}`);
      const s = await restore(repo, snap, { target, inline });
      expect(s.errors).toBe(0);
      expect((await readFile(join(target, 'dump/bj.pgdump'))).equals(data)).toBe(true);
    }
    // On the workers only (the server's check), and on this thread too (the command line's).
    for (const packsHere of [false, true]) {
      const r = await check(repo, { readData: true, packsHere });
      expect(r.errors).toEqual([]);
      expect(r.packsRead).toBeGreaterThan(0);
    }
  });

  test("the next backup compresses with its parent's dictionary: unchanged chunks are not stored again", async () => {
    const first = rows(20_000);
    made = 0;
    const g1 = await backup(first, '2026-01-01T00:00:00Z');
    const changed = new Set([100, 7_000, 15_000]);
    const second = rows(20_000, changed);
    const g2 = await backup(second, '2026-01-02T00:00:00Z');
    expect(made).toBe(1);
    const dictionaryOf = async (snap: SnapshotInfo) => {
      const tree = await repo.loadTree(snap.tree);
      return (await repo.loadTree(tree.nodes[0].subtree!)).nodes[0].dictionary;
    };
    expect(await dictionaryOf(g2.snap)).toBe(await dictionaryOf(g1.snap));
    // Three rows changed: a few small chunks (and the trees), far from the first generation's bytes.
    expect(g2.added).toBeLessThan(g1.added / 5);
    expect((await readAll(repo, g2.snap, '/dump/bj.pgdump')).equals(second)).toBe(true);
  });

  test('prune keeps a dictionary while a snapshot needs a blob compressed with it, and removes it after', async () => {
    const first = rows(20_000);
    const g1 = await backup(first, '2026-01-01T00:00:00Z');
    const second = rows(20_000, new Set([5, 10_000]));
    const g2 = await backup(second, '2026-01-02T00:00:00Z');
    const dictionary = [...repo.index.dictionaries()][0];
    expect(repo.index.get(Buffer.from(dictionary, 'hex'))).toBeDefined();

    // The first generation goes: the dictionary stays (the second one's chunks use it); then no snapshot is left.
    await pruneKeeps(dictionary, [g1.snap], g2.snap, second);
  });

  test("a large tree around a stream is compressed with the first one stored whole: read back, checked, kept by prune while needed", async () => {
    // Enough rows for a list of chunks past 64 KiB: the tree of /dump is then a large tree.
    const count = 80_000;
    const g1 = await backup(rows(count), '2026-01-01T00:00:00Z');
    const key = await dumpTree(g1.snap);
    const keyLoc = repo.blobLocation(key);
    expect(keyLoc.rawLength).toBeGreaterThan(64 * 1024);
    expect(keyLoc.dictionary).toBeUndefined();
    const second = rows(count, new Set([10, 40_000, 79_000]));
    const g2 = await backup(second, '2026-01-02T00:00:00Z');
    const third = rows(count, new Set([10, 20_000, 60_000]));
    const g3 = await backup(third, '2026-01-03T00:00:00Z');
    // Each later tree names the key (not its parent, which has a dictionary itself) and takes a fraction of it.
    for (const snap of [g2.snap, g3.snap]) {
      const loc = repo.blobLocation(await dumpTree(snap));
      expect(loc.type).toBe(BlobType.Tree);
      expect(loc.dictionary).toBe(key);
      expect(loc.length).toBeLessThan(keyLoc.length / 4);
    }

    // A fresh process reads them (the key read first as a dictionary), restores them and checks them.
    await repo.close();
    repo = await Repository.open(storage());
    expect((await readAll(repo, g2.snap, '/dump/bj.pgdump')).equals(second)).toBe(true);
    const target = join(dir.path, 'restored');
    expect((await restore(repo, g3.snap, { target })).errors).toBe(0);
    expect((await readFile(join(target, 'dump/bj.pgdump'))).equals(third)).toBe(true);
    for (const packsHere of [false, true]) expect((await check(repo, { readData: true, packsHere })).errors).toEqual([]);

    // The snapshot whose tree is the key goes: the key stays while a tree compressed with it is needed.
    await pruneKeeps(key, [g1.snap, g2.snap], g3.snap, third);
  });

  test('a large tree that drifted from its key is stored whole again, and becomes the next key', async () => {
    const count = 80_000;
    const g1 = await backup(rows(count), '2026-01-01T00:00:00Z');
    const key = await dumpTree(g1.snap);
    // Other rows altogether: compressed with the key all the same (its parent was the key), for little gain.
    const other = Buffer.from(rows(count).toString().replace(/weekly meeting/g, 'review'));
    const g2 = await backup(other, '2026-01-02T00:00:00Z');
    const drifted = repo.blobLocation(await dumpTree(g2.snap));
    expect(drifted.dictionary).toBe(key);
    expect(drifted.length * 2).toBeGreaterThan(repo.blobLocation(key).length);
    // Its parent took more than half of the key: stored whole, it is the key of the backups after it.
    const g3 = await backup(Buffer.from(other.toString().replace('\t0\n', '\t1\n')), '2026-01-03T00:00:00Z');
    const newKey = await dumpTree(g3.snap);
    expect(repo.blobLocation(newKey).dictionary).toBeUndefined();
    const g4 = await backup(Buffer.from(other.toString().replace('\t2\n', '\t3\n')), '2026-01-04T00:00:00Z');
    expect(repo.blobLocation(await dumpTree(g4.snap)).dictionary).toBe(newKey);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
  });

  test('check reports the blobs of a pack whose dictionary is lost', async () => {
    const { snap } = await backup(rows(20_000), '2026-01-01T00:00:00Z');
    const dictionary = [...repo.index.dictionaries()][0];
    const pack = repo.blobLocation(dictionary).pack;
    // The dictionary's pack holds only it (and no chunk of the stream, which are in the dictionary's packs).
    expect(repo.blobLocation(dictionary).dictionary).toBeUndefined();
    await rm(join(dir.path, 'repo', 'data', pack.slice(0, 2), pack));
    await repo.close();
    repo = await Repository.open(storage());
    for (const packsHere of [false, true]) {
      const r = await check(repo, { readData: true, packsHere });
      expect(r.errors.some((e) => e.includes(`pack ${pack.slice(0, 12)}: missing`))).toBe(true);
      expect(r.errors.some((e) => e.includes(`dictionary ${dictionary.slice(0, 12)}`))).toBe(true);
    }
    await expect(readAll(repo, snap, '/dump/bj.pgdump')).rejects.toThrow(/reading blob/);
  });
});

test('a repository of format version 1 stays version 1: a stream asking for a dictionary is compressed without one', async () => {
  const dir = await tempDir('dp-dictionary-v1-');
  try {
    await cp(fileURLToPath(new URL('../fixtures/golden-v1/repo', import.meta.url)), join(dir.path, 'repo'), { recursive: true });
    const repo = await Repository.open(new LocalStorage(join(dir.path, 'repo')));
    try {
      const data = rows(5_000);
      const a = new Archiver(repo, { server: 'db', tag: 'bm/pgsql' });
      await a.addStream('/dump/bj.pgdump', [data], { chunker: 'rows', dictionary: async () => data.subarray(0, 8192) });
      const snap = await a.commit();
      expect(repo.config.version).toBe(1);
      expect(repo.index.dictionaries().size).toBe(0);
      // Its index files keep the version 1 header: the versions before dictionaries still read them.
      for await (const f of repo.storage.list('index')) expect((await repo.storage.read('index', f.name))[0]).toBe(1);
      expect((await readAll(repo, snap, '/dump/bj.pgdump')).equals(data)).toBe(true);
    } finally {
      await repo.close();
    }
  } finally {
    await dir.cleanup();
  }
});

test('a tree of compression 2 may declare more than a tree alone could (it repeats its dictionary), within a bound', () => {
  const limits = { data: 64 * 1024, overhead: 0 };
  const tree = { type: BlobType.Tree, zstd: true, length: 1000 };
  expect(blobProblem({ ...tree, rawLength: 2_000_000 }, limits)).toMatch(/more than a tree can be/);
  expect(blobProblem({ ...tree, rawLength: 2_000_000, dictionary: 'ab'.repeat(32) }, limits)).toBeNull();
  expect(blobProblem({ ...tree, rawLength: 64 * 1024 * 1024, dictionary: 'ab'.repeat(32) }, limits)).toMatch(/more than a tree can be/);
});
