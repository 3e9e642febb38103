import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Archiver, check, openFile, PasswordError, prune, Repository, restore, type Storage } from '../../server/engine/index.js';
import { readLocks } from '../../server/engine/lock.js';
import { readPruneMarks } from '../../server/engine/prune-marks.js';
import { LocalStorage } from '../../server/storage/index.js';
import { S3Storage } from '../../server/storage/s3.js';
import { startS3, type TestS3 } from '../storage/s3-server.js';
import { bytesOf, manifest, tempDir } from './helpers.js';

// A cheap scrypt for tests: the format stores its parameters, so any cost reads back.
const FAST = { N: 1024, r: 8, p: 1 };
const PASSWORD = 'correct horse battery staple';
/** A message body that must never appear in the repository's files, compressed or not. */
const BODY = 'Subject: quarterly figures\r\n\r\n' + 'The confidential merger with Initech closes on Friday. '.repeat(40);

let dir: { path: string; cleanup: () => Promise<void> };
let s3: TestS3;
const opened: S3Storage[] = [];

beforeAll(async () => {
  dir = await tempDir('dp-crypt-');
  s3 = await startS3();
});
afterAll(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
  await dir?.cleanup();
});

async function makeSpool(root: string): Promise<void> {
  await mkdir(join(root, 'user1/Maildir/cur'), { recursive: true });
  await mkdir(join(root, 'empty/nested'), { recursive: true });
  await writeFile(join(root, 'user1/Maildir/cur/1700000000.M1P1.host:2,S'), BODY);
  for (let i = 0; i < 10; i++) await writeFile(join(root, `user1/Maildir/cur/17000001${i}.M${i}P1.host:2,`), bytesOf(i + 1, 3000 + i * 101, true));
  await writeFile(join(root, 'empty-file'), '');
  await writeFile(join(root, 'élève ☃.txt'), 'non-ASCII ✓\n');
  // Larger than the file chunker's minimum: cut on the workers, window by window.
  await writeFile(join(root, 'big.bin'), Buffer.concat([bytesOf(7, 1_500_000), Buffer.from(BODY.repeat(200))]));
  await symlink('user1/Maildir', join(root, 'link'));
}

/** Every file under a folder, recursively. */
async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.each([
  ['local', () => new LocalStorage(join(dir.path, `repo-${Math.random().toString(16).slice(2)}`)) as Storage],
  [
    'S3',
    () => {
      const s = new S3Storage(s3.location(), { env: s3.env });
      opened.push(s);
      return s as Storage;
    },
  ],
])('an encrypted repository on %s', (_name, makeStorage) => {
  test('round trip: backup, incremental backup, restore byte for byte, stream, references, check --read-data, two-phase prune', async () => {
    const storage = makeStorage();
    const src = join(dir.path, `src-${_name}`);
    await makeSpool(src);
    const repo = await Repository.init(storage, { password: PASSWORD, scrypt: FAST });
    expect(repo.encrypted).toBe(true);
    expect(repo.config.version).toBe(2);
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    await a.addStream('/pgsql/dump', [Buffer.from(BODY.repeat(50))]);
    const s1 = await a.commit();
    await repo.writeReference('latest', Buffer.from(JSON.stringify({ generation: 'g1', body: BODY })));
    await repo.close();

    // Reopened with the password: everything reads back.
    const again = await Repository.open(storage, { password: () => PASSWORD });
    expect(again.keyId).toBe(repo.keyId);
    const b = new Archiver(again, { server: 'mail1', tag: 'mail/imap' });
    await b.addTree('/spool', src);
    const s2 = await b.commit();
    expect(s2.summary.filesUnmodified).toBe(14);
    expect(s2.summary.blobsNew).toBe(1);
    const out = join(dir.path, `out-${_name}`);
    const r = await restore(again, s2, { target: out });
    expect(r.errors).toBe(0);
    expect(await manifest(join(out, 'spool'))).toEqual(await manifest(src));
    const dump: Buffer[] = [];
    for await (const piece of openFile(again, s1, '/pgsql/dump')) dump.push(piece as Buffer);
    expect(Buffer.concat(dump).toString()).toBe(BODY.repeat(50));
    expect(JSON.parse((await again.readReference('latest'))!.toString()).generation).toBe('g1');
    expect((await check(again, { readData: true })).errors).toEqual([]);

    // Locks are sealed too, and still seen by another process of the repository.
    const lock = await again.lock(true, 'prune');
    const locks = await readLocks(storage, again.cipher);
    expect(locks.map((l) => l.info.purpose)).toEqual(['prune']);
    await expect(again.lock(false, 'backup')).rejects.toThrow(/locked exclusively by prune/);
    await lock.release();

    // Two-phase prune: the marks are sealed, and a later prune deletes what they name.
    await again.deleteSnapshot(s1.id);
    const t0 = Date.now();
    const p1 = await prune(again, { now: () => t0 });
    expect(p1.packsMarked).toBeGreaterThan(0);
    expect((await readPruneMarks(storage, again.cipher)).size).toBe(p1.packsMarked);
    await expect(readPruneMarks(storage)).rejects.toThrow(/prune-marks: cannot be read/);
    const p2 = await prune(again, { now: () => t0 + 25 * 3600 * 1000 });
    expect(p2.packsDeleted).toBe(p1.packsMarked);
    expect((await check(again, { readData: true })).errors).toEqual([]);
    const out2 = join(dir.path, `out2-${_name}`);
    // On the codec workers this time (the first restore, small, ran on this thread): they open sealed blobs too.
    expect((await restore(again, s2, { target: out2, inline: false })).errors).toBe(0);
    expect(await manifest(join(out2, 'spool'))).toEqual(await manifest(src));
    await again.close();
  });

  test('a wrong or missing password is refused with PasswordError; a plain open never falls back', async () => {
    const storage = makeStorage();
    await (await Repository.init(storage, { password: PASSWORD, scrypt: FAST })).close();
    await expect(Repository.open(storage, { password: 'wrong' })).rejects.toThrow(PasswordError);
    await expect(Repository.open(storage, { password: 'wrong' })).rejects.toThrow(/wrong password for repository .*: none of its 1 key\(s\) opens with it/);
    await expect(Repository.open(storage)).rejects.toThrow(/is encrypted: give its password/);
    await expect(Repository.open(storage, { password: () => undefined })).rejects.toMatchObject({ kind: 'password' });
  });
});

describe('repacking an encrypted repository', () => {
  test('prune copies the sealed blobs still needed into new packs (sealed header), and everything still reads', async () => {
    const storage = new LocalStorage(join(dir.path, 'repack-repo'));
    const repo = await Repository.init(storage, { password: PASSWORD, scrypt: FAST });
    const src = join(dir.path, 'repack-src');
    await mkdir(src, { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, `m${i}`), bytesOf(100 + i, 20_000));
    const a = new Archiver(repo, { server: 's', tag: 't' });
    await a.addTree('/d', src);
    const s1 = await a.commit();
    // Half the messages go: the one data pack is half used, and is repacked.
    for (let i = 0; i < 10; i++) await rm(join(src, `m${i}`));
    const b = new Archiver(repo, { server: 's', tag: 't' });
    await b.addTree('/d', src);
    const s2 = await b.commit();
    await repo.deleteSnapshot(s1.id);
    const p = await prune(repo, { grace: 0 });
    expect(p.packsRepacked).toBeGreaterThan(0);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    const again = await Repository.open(storage, { password: PASSWORD });
    const out = join(dir.path, 'repack-out');
    expect((await restore(again, s2, { target: out })).errors).toBe(0);
    expect(await manifest(join(out, 'd'))).toEqual(await manifest(src));
    await again.close();
    await repo.close();
  });
});

describe('what an encrypted repository reveals without its password', () => {
  test('no file holds a message body, a file name or a JSON field; blob ids are not SHA-256 of content', async () => {
    const root = join(dir.path, 'grep-repo');
    const src = join(dir.path, 'grep-src');
    await makeSpool(src);
    const repo = await Repository.init(new LocalStorage(root), { password: PASSWORD, scrypt: FAST });
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    await a.addBytes('/exports/note.txt', Buffer.from(BODY));
    const snap = await a.commit();
    await repo.writeReference('latest', Buffer.from(JSON.stringify({ body: BODY })));
    const files = await allFiles(root);
    expect(files.some((f) => f.includes('/keys/'))).toBe(true);
    const needles = ['Initech', 'confidential merger', '1700000000.M1P1', 'Maildir', 'mail/imap', '"nodes"', 'élève', '"tree"', 'Subject:'];
    for (const f of files) {
      const bytes = await readFile(f);
      for (const n of needles) expect(bytes.includes(Buffer.from(n)), `${n} found in ${f}`).toBe(false);
      expect((await stat(f)).mode & 0o077).toBe(0);
    }
    // The message's blob id is keyed: the plain SHA-256 of its content is nowhere (not in a name, not in a file).
    const plainId = sha(Buffer.from(BODY));
    expect(repo.blobId(Buffer.from(BODY)).toString('hex')).not.toBe(plainId);
    const root2 = (await repo.loadTree(snap.tree)).nodes.find((n) => n.name === 'spool')!;
    const cur = (await repo.loadTree((await repo.loadTree((await repo.loadTree(root2.subtree!)).nodes.find((n) => n.name === 'user1')!.subtree!)).nodes.find((n) => n.name === 'Maildir')!.subtree!)).nodes.find((n) => n.name === 'cur')!;
    const msg = (await repo.loadTree(cur.subtree!)).nodes.find((n) => n.name === '1700000000.M1P1.host:2,S')!;
    expect(msg.content).toEqual([repo.blobId(Buffer.from(BODY)).toString('hex')]);
    for (const f of files) {
      expect(f.includes(plainId)).toBe(false);
      expect((await readFile(f)).includes(Buffer.from(plainId, 'hex'))).toBe(false);
    }
    await repo.close();
  });

  test('two encrypted repositories given the same content share no blob id', async () => {
    const r1 = await Repository.init(new LocalStorage(join(dir.path, 'same-1')), { password: PASSWORD, scrypt: FAST });
    const r2 = await Repository.init(new LocalStorage(join(dir.path, 'same-2')), { password: PASSWORD, scrypt: FAST });
    expect(r1.blobId(Buffer.from(BODY)).equals(r2.blobId(Buffer.from(BODY)))).toBe(false);
    expect(r1.config.gearSeed).not.toBe(r2.config.gearSeed);
  });
});

describe('keys: several passwords per repository', () => {
  test('add, list, open with either, remove one, never the last', async () => {
    const storage = new LocalStorage(join(dir.path, 'keys-repo'));
    const repo = await Repository.init(storage, { password: PASSWORD, scrypt: FAST });
    const second = await repo.addKey('second password', FAST);
    const keys = await repo.listKeys();
    expect(keys.map((k) => k.id).sort()).toEqual([repo.keyId, second].sort());
    expect(keys.every((k) => typeof k.created === 'string' && k.hostname.length > 0)).toBe(true);
    const viaSecond = await Repository.open(storage, { password: 'second password', loadIndex: false });
    expect(viaSecond.keyId).toBe(second);
    expect(viaSecond.config).toEqual(repo.config);
    await viaSecond.close();

    expect(await repo.removeKey(repo.keyId!.slice(0, 8))).toBe(repo.keyId);
    await expect(Repository.open(storage, { password: PASSWORD })).rejects.toThrow(PasswordError);
    await expect(repo.removeKey(second)).rejects.toThrow(/only key: add another before removing it/);
    await expect(repo.removeKey('ffff')).rejects.toThrow(/no key "ffff"/);
    expect((await Repository.open(storage, { password: 'second password', loadIndex: false })).keyId).toBe(second);
    await repo.close();
  });

  test('a damaged or forged key file does not stop the others, and cannot make scrypt exhaust the machine', async () => {
    const storage = new LocalStorage(join(dir.path, 'forged-keys'));
    const repo = await Repository.init(storage, { password: PASSWORD, scrypt: FAST });
    const real = JSON.parse((await storage.read('key', repo.keyId!)).toString());
    // 128 · 2^24 · 8 bytes = 16 GiB of scrypt memory, asked by a forged file: refused before anything is derived.
    await storage.write('key', 'f'.repeat(64), Buffer.from(JSON.stringify({ ...real, kdf: { ...real.kdf, N: 2 ** 24 } })));
    await storage.write('key', 'e'.repeat(64), Buffer.from('not json'));
    expect((await Repository.open(storage, { password: PASSWORD, loadIndex: false })).keyId).toBe(repo.keyId);
    await expect(Repository.open(storage, { password: 'wrong', loadIndex: false })).rejects.toThrow(/none of its 1 key\(s\) opens with it; 2 more cannot be read/);
    await expect(repo.listKeys()).rejects.toThrow(/key eeeeeeeeeeee: not valid JSON; key ffffffffffff: not a version 2 scrypt key file within bounds/);
    await repo.close();
  });

  test('a plain repository has no keys and opens without a password', async () => {
    const storage = new LocalStorage(join(dir.path, 'plain-repo'));
    const repo = await Repository.init(storage);
    expect(repo.encrypted).toBe(false);
    // A plain repository is created as format 3 (dictionaries), an encrypted one as format 2.
    expect(repo.config.version).toBe(3);
    await expect(repo.listKeys()).rejects.toThrow(/not encrypted/);
    await (await Repository.open(storage, { password: 'ignored' })).close();
    await repo.close();
  });
});

describe('sealing a blob in place', () => {
  test('sealInto gives what open reads back, at any size around its piece size, each with a nonce of its own', async () => {
    const { SEAL_OVERHEAD, sealInto, tryOpen } = await import('../../server/engine/crypto.js');
    const key = Buffer.alloc(32, 7);
    const nonces = new Set<string>();
    for (const size of [0, 1, 4095, 65535, 65536, 65537, 3 * 65536 + 5, 1_000_003]) {
      const plain = Buffer.alloc(size);
      for (let i = 0; i < size; i++) plain[i] = (i * 31 + size) & 0xff;
      const out = Buffer.alloc(size + SEAL_OVERHEAD + 10, 0xee);
      const n = sealInto(key, plain, out, 5);
      expect(n).toBe(size + SEAL_OVERHEAD);
      expect(out[4]).toBe(0xee);
      expect(out[5 + n]).toBe(0xee);
      expect(tryOpen(key, out.subarray(5, 5 + n))?.equals(plain)).toBe(true);
      nonces.add(out.subarray(5, 17).toString('hex'));
    }
    // Past one batch of nonces: every seal still has its own.
    const out = Buffer.alloc(64);
    for (let i = 0; i < 600; i++) {
      sealInto(key, Buffer.from([i & 0xff]), out, 0);
      nonces.add(out.subarray(0, 12).toString('hex'));
    }
    expect(nonces.size).toBe(608);
  });
});
