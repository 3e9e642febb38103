import { chmod, lstat, mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, restore, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { FilesCache, FilesCacheWriter, filesCachePath, pathHash } from '../../server/engine/files-cache.js';
import { bytesOf, manifest, newRepo, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let src: string;
let cacheDir: string;
let notices: string[];
let treesLoaded: number;
let snapshotsRead: number;

const messages = (user: string) => join(src, user, 'Maildir/cur');

beforeEach(async () => {
  dir = await tempDir('dp-fcache-');
  repo = await newRepo(join(dir.path, 'repo'));
  src = join(dir.path, 'spool');
  cacheDir = join(dir.path, 'cache');
  for (const user of ['alice', 'bob']) {
    await mkdir(messages(user), { recursive: true });
    for (let i = 0; i < 10; i++) await writeFile(join(messages(user), `m${i}:2,`), bytesOf(i + (user === 'bob' ? 100 : 0), 2000 + i * 10, true));
  }
  // A file changed less than a second before its stat is not trusted to the cache (its ctime could stay the
  // same through a write in the same clock tick): the files are made older than that first.
  await new Promise((r) => setTimeout(r, 1100));
  notices = [];
  treesLoaded = 0;
  snapshotsRead = 0;
  const loadSnapshot = repo.loadSnapshot.bind(repo);
  repo.loadSnapshot = (id) => {
    snapshotsRead++;
    return loadSnapshot(id);
  };
  const load = repo.loadTree.bind(repo);
  repo.loadTree = (id, cache) => {
    treesLoaded++;
    return load(id, cache);
  };
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function backup(opts: { cache?: boolean } = {}): Promise<SnapshotInfo> {
  const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap', cacheDir: opts.cache === false ? undefined : cacheDir, progress: { notice: (m) => notices.push(m) } });
  await a.addTree('/spool', src);
  return a.commit();
}

async function restoresAsSource(s: SnapshotInfo): Promise<void> {
  const out = join(dir.path, `out-${s.id.slice(0, 8)}`);
  expect((await restore(repo, s, { target: out })).errors).toBe(0);
  expect(await manifest(join(out, 'spool'))).toEqual(await manifest(src));
}

async function cacheFile(): Promise<string> {
  const files = join(cacheDir, repo.config.id, 'files');
  const [name] = await readdir(files);
  return join(files, name);
}

describe('the files cache', () => {
  test('an unchanged re-run reads no file and decodes none of the parent snapshot\'s trees', async () => {
    const first = await backup();
    treesLoaded = 0;
    const second = await backup();
    expect(second.summary.filesUnmodified).toBe(20);
    expect(second.summary.bytesRead).toBe(0);
    expect(second.tree).toBe(first.tree);
    // Not even the root's: with the cache, where the source sat in the parent snapshot does not matter.
    expect(treesLoaded).toBe(0);
    expect(notices).toEqual([]);
  });

  test('a source given with a trailing slash is the same source: same paths, same trees, nothing read', async () => {
    const first = await backup();
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap', cacheDir });
    await a.addTree('/spool', src + '/');
    const second = await a.commit();
    expect(second.summary.filesUnmodified).toBe(20);
    expect(second.summary.bytesRead).toBe(0);
    expect(second.tree).toBe(first.tree);
  });

  test('is owner-only, below the repository id, and one that others can write is not used', async () => {
    await backup();
    const file = await cacheFile();
    expect(file.startsWith(join(cacheDir, repo.config.id, 'files'))).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(cacheDir, repo.config.id))).mode & 0o777).toBe(0o700);
    await chmod(file, 0o666);
    treesLoaded = 0;
    const s = await backup();
    expect(notices.join('\n')).toMatch(/must belong to this user and be writable by no one else/);
    expect(treesLoaded).toBeGreaterThan(2);
    expect(s.summary.filesUnmodified).toBe(20);
  });

  test('a file rewritten with the same size and its mtime set back is read again, with the cache or without', async () => {
    const path = join(messages('alice'), 'm3:2,');
    // A whole second, which utimes sets back exactly; then older than the cache's margin again.
    await utimes(path, 1_700_000_000, 1_700_000_000);
    await new Promise((r) => setTimeout(r, 1100));
    for (const cache of [true, false]) {
      await backup({ cache });
      const before = await lstat(path, { bigint: true });
      await writeFile(path, bytesOf(cache ? 7777 : 8888, Number(before.size), true));
      await utimes(path, 1_700_000_000, 1_700_000_000);
      const after = await lstat(path, { bigint: true });
      expect([after.mtimeNs, after.size, after.ino]).toEqual([before.mtimeNs, before.size, before.ino]);
      const s = await backup({ cache });
      expect(s.summary.filesChanged + s.summary.filesNew).toBe(1);
      expect(s.summary.filesRenamed).toBe(0);
      expect(s.summary.bytesRead).toBe(Number(before.size));
      await restoresAsSource(s);
    }
  });

  test('a flag change and a move between folders are recognised through it: not read again', async () => {
    await backup();
    await rename(join(messages('alice'), 'm1:2,'), join(messages('alice'), 'm1:2,S'));
    await mkdir(join(src, 'bob/Maildir/.Archive/cur'), { recursive: true });
    await rename(join(messages('bob'), 'm2:2,'), join(src, 'bob/Maildir/.Archive/cur/m2:2,S'));
    await writeFile(join(messages('bob'), 'new:2,'), bytesOf(4242, 5000, true));
    treesLoaded = 0;
    const s = await backup();
    expect(s.summary.filesRenamed).toBe(2);
    expect(s.summary.filesNew).toBe(1);
    expect(s.summary.bytesRead).toBe(5000);
    expect(treesLoaded).toBe(0);
    await restoresAsSource(s);
  });

  test('a damaged cache file is not used: the backup says so and reads the parent snapshot instead', async () => {
    const first = await backup();
    const file = await cacheFile();
    const bytes = await readFile(file);
    bytes[bytes.length - 5] ^= 0xff;
    await writeFile(file, bytes);
    treesLoaded = 0;
    const s = await backup();
    expect(notices.join('\n')).toMatch(/files cache .* not used: checksum does not match/);
    expect(treesLoaded).toBeGreaterThan(2);
    expect(s.tree).toBe(first.tree);
    // Written again whole: the next run uses it.
    notices = [];
    expect((await backup()).tree).toBe(first.tree);
    expect(notices).toEqual([]);
  });

  test('a stale cache naming blobs the repository does not have makes the files read again', async () => {
    const first = await backup();
    // A cache for the right snapshot whose entries name other blobs (as if the repository had lost them).
    const w = new FilesCacheWriter();
    for (const user of ['alice', 'bob']) {
      for (const name of await readdir(messages(user))) {
        const p = join(messages(user), name);
        w.add(await lstat(p, { bigint: true }), Date.now(), pathHash(`/spool/${user}/Maildir/cur/${name}`), ['ab'.repeat(32)]);
      }
    }
    expect(w.size).toBe(20);
    await w.save(filesCachePath(cacheDir, repo.config.id, 'mail1', 'mail/imap'), first.id);
    const s = await backup();
    expect(s.summary.bytesRead).toBeGreaterThan(0);
    expect(s.summary.filesUnmodified).toBe(0);
    expect(s.tree).toBe(first.tree);
    await restoresAsSource(s);
  });

  test('a repository another client backed up to meanwhile: the cache of an older snapshot is not used', async () => {
    await backup();
    // Another client (no cache here) writes the next snapshot of the same (server, tag) after a change.
    await writeFile(join(messages('alice'), 'm4:2,'), bytesOf(31337, 2040, true));
    const other = await backup({ cache: false });
    // This client's cache is of the snapshot before `other`: what it says may no longer hold.
    treesLoaded = 0;
    const s = await backup();
    expect(s.parent).toBe(other.id);
    expect(treesLoaded).toBeGreaterThan(2);
    expect(s.tree).toBe(other.tree);
    await restoresAsSource(s);
    // This run wrote a cache of its own snapshot: the next one uses it.
    treesLoaded = 0;
    expect((await backup()).tree).toBe(other.tree);
    expect(treesLoaded).toBeLessThanOrEqual(2);
  });

  test('a file changed less than a second before its stat is recorded as racy: never trusted, read again and unmodified only with the same blobs', async () => {
    const path = join(messages('alice'), 'm0:2,');
    await writeFile(path, 'fresh');
    const w = new FilesCacheWriter();
    w.add(await lstat(path, { bigint: true }), Date.now(), pathHash('/x'), []);
    w.add(await lstat(join(messages('alice'), 'm1:2,'), { bigint: true }), Date.now() + 1500, pathHash('/y'), []);
    expect(w.size).toBe(2);
    const file = join(dir.path, 'c');
    const modes = async () => [(await stat(dir.path)).mode, (await stat(join(dir.path, '..'))).mode];
    const before = await modes();
    await w.save(file, 'cd'.repeat(32));
    // Folders it did not make are left as they are (never a chmod of the folders above).
    expect(await modes()).toEqual(before);
    expect(await FilesCache.load(file, 'ef'.repeat(32))).toBeNull();
    const c = await FilesCache.load(file, 'cd'.repeat(32));
    const st = await lstat(path, { bigint: true });
    const e = c!.find(st, () => true);
    expect([c!.racy(e), c!.unchanged(e, st), c!.samePath(e, pathHash('/x')), c!.content(e)]).toEqual([true, true, true, []]);
    const old = await lstat(join(messages('alice'), 'm1:2,'), { bigint: true });
    expect(c!.racy(c!.find(old, () => true))).toBe(false);

    // Through backups: a file written just before the first is read again by the next, as it was: unmodified.
    const racy = join(messages('bob'), 'racy:2,');
    await writeFile(racy, bytesOf(7, 3000, true));
    const first = await backup();
    expect(first.summary.filesNew).toBe(21);
    treesLoaded = 0;
    const second = await backup();
    // The cache was used (the root's tree only, to find the source), not the parent's trees.
    expect(treesLoaded).toBeLessThanOrEqual(2);
    expect(notices).toEqual([]);
    expect([second.summary.filesUnmodified, second.summary.filesChanged, second.summary.filesNew]).toEqual([21, 0, 0]);
    expect(second.summary.bytesRead).toBe(3000 + 'fresh'.length);
    // Written again, same size: read and changed (whatever its stat says), and restored as it is now.
    await writeFile(racy, bytesOf(8, 3000, true));
    const third = await backup();
    expect(third.summary.filesChanged).toBe(1);
    await restoresAsSource(third);
  });
});

describe('the local list of snapshots', () => {
  test('finds the parent reading only the snapshot files it does not know, and follows other clients and forgets', async () => {
    const first = await backup();
    await backup({ cache: false });
    await backup({ cache: false });
    snapshotsRead = 0;
    const fourth = await backup();
    // The two written without it, then the parent chosen (read and verified).
    expect(snapshotsRead).toBe(3);
    snapshotsRead = 0;
    const fifth = await backup();
    expect(fifth.parent).toBe(fourth.id);
    expect(snapshotsRead).toBe(1);
    // Another (server, tag) and a newer snapshot from another client.
    await new Archiver(repo, { server: 'mail2', tag: 'mail/imap', cacheDir }).commit();
    const other = await backup({ cache: false });
    expect((await backup()).parent).toBe(other.id);
    // Forgotten snapshots are not chosen.
    const all = await repo.listSnapshots({ server: 'mail1', tag: 'mail/imap' });
    for (const s of all.slice(1)) await repo.deleteSnapshot(s.id);
    expect((await backup()).parent).toBe(first.id);
  });
});
