import { link, mkdir, readFile, stat, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { cutsInto } from '../../server/engine/chunker.js';
import { Archiver, openFile, readDir, restore, sha256, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { bytesOf, manifest, newRepo, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;

beforeEach(async () => {
  dir = await tempDir('dp-roundtrip-');
  repo = await newRepo(dir.path);
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

/** A tree with everything a mail server's disk has, and the awkward cases. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'user1/Maildir/cur'), { recursive: true });
  await mkdir(join(root, 'user1/Maildir/.Sent/cur'), { recursive: true });
  await mkdir(join(root, 'empty/nested/deeper'), { recursive: true });
  await mkdir(join(root, 'élève/日本語'), { recursive: true });
  await writeFile(join(root, 'user1/Maildir/cur/1700000000.M1P1.host:2,S'), bytesOf(1, 5000, true));
  await writeFile(join(root, 'user1/Maildir/.Sent/cur/1700000001.M2P1.host:2,'), bytesOf(2, 12000, true));
  await writeFile(join(root, 'empty-file'), '');
  await writeFile(join(root, 'élève/日本語/résumé ☃.txt'), 'non-ASCII names and content: ça marche ✓\n');
  // Larger than the file chunker's minimum (512 KiB): cut into many chunks, some repeated.
  const big = Buffer.concat([bytesOf(3, 3 * 1024 * 1024), bytesOf(4, 2 * 1024 * 1024, true), bytesOf(3, 1024 * 1024)]);
  await writeFile(join(root, 'big.bin'), big);
  await symlink('user1/Maildir', join(root, 'link-to-maildir'));
  await symlink('/nonexistent/target', join(root, 'dangling'));
  await link(join(root, 'big.bin'), join(root, 'empty/hardlink-to-big'));
  await writeFile(join(root, 'secret'), 'mode 600');
  await chmod(join(root, 'secret'), 0o600);
  await chmod(join(root, 'empty/nested'), 0o750);
  await utimes(join(root, 'user1/Maildir/cur/1700000000.M1P1.host:2,S'), 1700000000.123456, 1700000000.123456);
}

describe('backup and restore round trip', () => {
  test('restores contents and metadata byte for byte: nested and empty folders, empty files, symlinks, hard links, large files, non-ASCII names', async () => {
    const src = join(dir.path, 'src');
    await makeTree(src);
    const before = await manifest(src);
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const snap = await a.commit();
    expect(snap.summary.errors).toBe(0);
    expect(snap.summary.filesNew).toBe(7);

    const out = join(dir.path, 'out');
    const r = await restore(repo, snap, { target: out });
    expect(r.errors).toBe(0);
    expect(r.hardlinks).toBe(1);
    expect(r.symlinks).toBe(2);
    expect(await manifest(join(out, 'spool'))).toEqual(before);
    const restoredBig = await stat(join(out, 'spool/big.bin'));
    const restoredLink = await stat(join(out, 'spool/empty/hardlink-to-big'));
    expect(restoredLink.ino).toBe(restoredBig.ino);
    // This restore is small: written on this thread. The same on the codec workers, as a large one is.
    expect((await restore(repo, snap, { target: join(dir.path, 'out-workers'), inline: false })).errors).toBe(0);
    expect(await manifest(join(dir.path, 'out-workers/spool'))).toEqual(before);
  });

  test('a restore of more files than one batch writes every batch, and hard-links to a file of an earlier batch', async () => {
    const src = join(dir.path, 'src');
    await makeTree(src);
    // Walked after the tree above (names sort after it): the links' primaries are in the first batch.
    for (let u = 0; u < 3; u++) {
      await mkdir(join(src, `z-user${u}/cur`), { recursive: true });
      for (let i = 0; i < 450; i++) await writeFile(join(src, `z-user${u}/cur/${i}.M${u}:2,S`), bytesOf(u * 1000 + i, 200 + i, true));
    }
    await link(join(src, 'big.bin'), join(src, 'z-user2/cur/zz-link-to-big'));
    const before = await manifest(src);
    const a = new Archiver(repo, { server: 's', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const snap = await a.commit();
    const out = join(dir.path, 'out');
    const r = await restore(repo, snap, { target: out });
    expect(r.errors).toBe(0);
    expect(r.files).toBe(r.filesTotal);
    expect(r.files).toBeGreaterThan(1350);
    expect(r.hardlinks).toBe(2);
    expect(await manifest(join(out, 'spool'))).toEqual(before);
    expect((await stat(join(out, 'spool/z-user2/cur/zz-link-to-big'))).ino).toBe((await stat(join(out, 'spool/big.bin'))).ino);
  });

  test('a large file is cut into many chunks and repeated chunks are stored once', async () => {
    const src = join(dir.path, 'src');
    await mkdir(src);
    const part = bytesOf(9, 16 * 1024 * 1024);
    await writeFile(join(src, 'twice.bin'), Buffer.concat([part, part]));
    const a = new Archiver(repo, { server: 's', tag: 't' });
    await a.addTree('/d', src);
    const snap = await a.commit();
    const [node] = await readDir(repo, snap, '/d');
    expect(node.content!.length).toBeGreaterThan(4);
    // Read window by window on the workers, the file is cut exactly where FastCDC cuts the whole of it.
    const whole = Buffer.concat([part, part]);
    const cuts: number[] = [];
    cutsInto(repo.gear, whole, repo.chunker('file'), cuts);
    let at = 0;
    expect(node.content).toEqual(cuts.map((c) => sha256(whole.subarray(at, (at = c))).toString('hex')));
    expect(new Set(node.content).size).toBeLessThan(node.content!.length);
    // Random data does not compress: what was added is one copy and the chunks around the seam, not two.
    expect(snap.summary.bytesAdded).toBeLessThan(1.5 * part.length);
    const streamed = await new Promise<Buffer>((res, rej) => {
      const parts: Buffer[] = [];
      openFile(repo, snap, '/d/twice.bin').on('data', (d: Buffer) => parts.push(d)).on('end', () => res(Buffer.concat(parts))).on('error', rej);
    });
    expect(streamed.equals(Buffer.concat([part, part]))).toBe(true);
  });

  test('--include restores one subtree and reads only the packs it needs', async () => {
    const src = join(dir.path, 'src');
    await makeTree(src);
    const a = new Archiver(repo, { server: 's', tag: 't' });
    await a.addTree('/spool', src);
    const snap = await a.commit();
    const out = join(dir.path, 'out');
    const r = await restore(repo, snap, { target: out, include: ['/spool/user1/Maildir'] });
    expect(r.files).toBe(2);
    expect(r.bytesFetched).toBeLessThan(20_000);
    expect((await readFile(join(out, 'spool/user1/Maildir/.Sent/cur/1700000001.M2P1.host:2,'))).equals(bytesOf(2, 12000, true))).toBe(true);
    await expect(stat(join(out, 'spool/big.bin'))).rejects.toThrow();
  });

  test('streams are chunked, deduplicated and restored like files', async () => {
    const dump = Buffer.concat([bytesOf(5, 2_000_000, true), bytesOf(6, 500_000)]);
    const a = new Archiver(repo, { server: 'core', tag: 'bm/pgsql' });
    await a.addStream('/pgsql/bj.dump', [dump.subarray(0, 777_777), dump.subarray(777_777)]);
    const s1 = await a.commit();
    const changed = Buffer.concat([dump.subarray(0, 1_000_000), Buffer.from('one changed row'), dump.subarray(1_000_000)]);
    const b = new Archiver(repo, { server: 'core', tag: 'bm/pgsql' });
    await b.addStream('/pgsql/bj.dump', [changed]);
    const s2 = await b.commit();
    // Small stream chunks: an insertion costs a few KiB, not the dump again.
    expect(s2.parent).toBe(s1.id);
    expect(s2.summary.bytesAdded).toBeLessThan(60_000);
    const out = join(dir.path, 'out');
    await restore(repo, s2, { target: out });
    expect((await readFile(join(out, 'pgsql/bj.dump'))).equals(changed)).toBe(true);
  });
});

/** The bytes openFile yields for `path` of `snap` (a range of them with `range`), as one buffer. */
async function readStored(snap: SnapshotInfo, path: string, range?: { start: number; end: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of openFile(repo, snap, path, range)) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

describe('reading part of a file', () => {
  test('gives exactly the bytes of a range, across blob boundaries, reading only the blobs over it', async () => {
    const data = bytesOf(5, 300_000, true);
    const a = new Archiver(repo, { server: 'core', tag: 'bm/pgsql' });
    const node = await a.addStream('/dump', [data]);
    const snap = await a.commit();
    expect(node.content!.length).toBeGreaterThan(10);
    const read = (start: number, end: number) => readStored(snap, '/dump', { start, end });
    for (const [start, end] of [[0, 1], [0, 300_000], [12_345, 98_765], [299_999, 300_000], [50_000, 50_000], [8191, 8193]]) {
      expect((await read(start, end)).equals(data.subarray(start, end))).toBe(true);
    }
    // Only the blobs over the range are read.
    const reads: string[] = [];
    const readBlobRun = repo.readBlobRun.bind(repo);
    repo.readBlobRun = async (ids: string[]) => (reads.push(...ids), readBlobRun(ids));
    await read(150_000, 150_100);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.length).toBeLessThanOrEqual(2);
    await expect(read(0, 300_001)).rejects.toThrow(/not in the file/);
  });

  test('reads the chunks a stream left one after the other in a pack with one storage read, each still checked', async () => {
    const data = bytesOf(7, 400_000, true);
    const a = new Archiver(repo, { server: 'core', tag: 'bm/pgsql' });
    const node = await a.addStream('/dump', [data]);
    const snap = await a.commit();
    expect(node.content!.length).toBeGreaterThan(20);
    const storage = repo.storage;
    const storageRead = storage.read.bind(storage);
    let reads = 0;
    storage.read = async (...args) => (reads++, storageRead(...args));
    const whole = () => readStored(snap, '/dump');
    expect((await whole()).equals(data)).toBe(true);
    expect(reads).toBeLessThanOrEqual(2);
    // A damaged chunk in the middle of a run is found.
    const loc = repo.blobLocation(node.content![5]);
    storage.read = async (type, name, offset = 0, length) => {
      const b = Buffer.from(await storageRead(type, name, offset, length));
      if (name === loc.pack && loc.offset >= offset && loc.offset < offset + b.length) b[loc.offset - offset + 3] ^= 0xff;
      return b;
    };
    await expect(whole()).rejects.toThrow(/blob .* (cannot decompress|content does not match)/);
  });
});

describe('streams and generated files across backups', () => {
  test('an unchanged stream and the folders around it add no data and reuse their trees', async () => {
    const d = await tempDir('dp-streams-');
    const r = await newRepo(d.path);
    const exports = Array.from({ length: 30 }, (_, i) => bytesOf(i + 1, 3000 + i, true));
    const run = async () => {
      const a = new Archiver(r, { server: 'core', tag: 'bm/pgsql' });
      await a.addStream('/pgsql/dump', [bytesOf(77, 200_000, true)]);
      for (const [i, e] of exports.entries()) await a.addBytes(`/entities/acme.lan/user${i}/book.jsonl`, e);
      return a.commit();
    };
    const first = await run();
    const second = await run();
    expect(second.summary.filesUnmodified).toBe(31);
    expect(second.summary.filesNew).toBe(0);
    // Nothing new at all: same file nodes, same made-up folders, so the very same root tree.
    expect(second.summary.blobsNew).toBe(0);
    expect(second.summary.bytesAdded).toBe(0);
    expect(second.tree).toBe(first.tree);
    await r.close();
    await d.cleanup();
  });
});
