import { randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Archiver, check, Repository, restore, type FileType } from '../../server/engine/index.js';
import { readLocks } from '../../server/engine/lock.js';
import { S3Storage } from '../../server/storage/s3.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';
import { startFaultServer } from './s3-fault-server.js';
import { startS3, type TestS3 } from './s3-server.js';

let s3: TestS3;
let dir: { path: string; cleanup: () => Promise<void> };
const opened: S3Storage[] = [];

beforeAll(async () => {
  s3 = await startS3();
  dir = await tempDir('dp-s3-engine-');
});
afterAll(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
  await dir?.cleanup();
});

/** An S3 storage that counts the bytes read from packs, to see that restores read only what they need. */
class CountingS3Storage extends S3Storage {
  packBytesRead = 0;
  override async read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    const b = await super.read(type, name, offset, length);
    if (type === 'data') this.packBytesRead += b.length;
    return b;
  }
}

function storage(location: string, env: NodeJS.ProcessEnv = {}): CountingS3Storage {
  const s = new CountingS3Storage(location, { env: { ...s3.env, ...env } });
  opened.push(s);
  return s;
}

/** A mail server's spool in small: Maildir messages, an empty folder and file, a large file, a symlink, non-ASCII names. */
async function makeSpool(root: string): Promise<void> {
  await mkdir(join(root, 'user1/Maildir/cur'), { recursive: true });
  await mkdir(join(root, 'user2/Maildir/.Sent/cur'), { recursive: true });
  await mkdir(join(root, 'empty/nested'), { recursive: true });
  await mkdir(join(root, 'élève'), { recursive: true });
  for (let i = 0; i < 20; i++) await writeFile(join(root, `user1/Maildir/cur/17000000${i}.M${i}P1.host:2,S`), bytesOf(i + 1, 2000 + i * 97, true));
  await writeFile(join(root, 'user2/Maildir/.Sent/cur/1700000100.M1P2.host:2,'), bytesOf(99, 12_000, true));
  await writeFile(join(root, 'empty-file'), '');
  await writeFile(join(root, 'élève/résumé ☃.txt'), 'non-ASCII names and content: ça marche ✓\n');
  // Incompressible and larger than the chunker's minimum: several chunks over more than one pack.
  await writeFile(join(root, 'attachments.bin'), randomBytes(6 * 1024 * 1024));
  await symlink('user1/Maildir', join(root, 'link-to-maildir'));
}

describe('the engine on S3', () => {
  test('backs up a spool into a bucket, restores it byte for byte, and check --read-data finds nothing wrong', async () => {
    const location = s3.location();
    const src = join(dir.path, 'src');
    await makeSpool(src);
    const before = await manifest(src);

    const repo = await Repository.init(storage(location));
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const first = await a.commit();
    expect(first.summary.errors).toBe(0);
    expect(first.summary.filesNew).toBe(24);
    await repo.close();

    // A new process: nothing known but the location.
    const again = await Repository.open(storage(location));
    const snap = await again.loadSnapshot(first.id);
    const out = join(dir.path, 'out');
    const r = await restore(again, snap, { target: out });
    expect(r.errors).toBe(0);
    expect(await manifest(join(out, 'spool'))).toEqual(before);

    const checked = await check(again, { readData: true });
    expect(checked.errors).toEqual([]);
    expect(checked.packsRead).toBe(checked.packs);
    expect(checked.packs).toBeGreaterThan(1);

    // An incremental backup from a third client stores only what changed.
    await writeFile(join(src, 'user1/Maildir/cur/1800000000.M9P1.host:2,'), bytesOf(7, 3000, true));
    const b = new Archiver(again, { server: 'mail1', tag: 'mail/imap', parent: snap.id });
    await b.addTree('/spool', src);
    const second = await b.commit();
    expect(second.summary).toMatchObject({ filesNew: 1, filesUnmodified: 24, errors: 0 });
    expect(second.summary.bytesAdded).toBeLessThan(64 * 1024);
    await again.close();
    // Every lock was released: none is left in the bucket.
    expect(await readLocks(storage(location))).toEqual([]);
  });

  test('a single mailbox restores from a few byte ranges, not whole packs', async () => {
    const location = s3.location();
    const src = join(dir.path, 'src-one');
    await makeSpool(src);
    const repo = await Repository.init(storage(location));
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const snap = await a.commit();
    await repo.close();

    const s = storage(location);
    const reader = await Repository.open(s);
    const out = join(dir.path, 'out-one');
    const r = await restore(reader, await reader.loadSnapshot(snap.id), { target: out, include: ['/spool/user2'] });
    expect(r.errors).toBe(0);
    const msg = 'spool/user2/Maildir/.Sent/cur/1700000100.M1P2.host:2,';
    expect((await readFile(join(out, msg))).equals(await readFile(join(src, msg.slice('spool/'.length))))).toBe(true);
    // The 6 MiB attachment shares the packs; none of it was fetched.
    expect(s.packBytesRead).toBeGreaterThan(0);
    expect(s.packBytesRead).toBeLessThan(512 * 1024);
    await reader.close();
  });

  test('a backup and its restore go through a server that throttles and fails one request in three', async () => {
    // Alternately 503 SlowDown, 429 (a gateway's throttling) and 500: each retried with backoff by the client.
    const faults = [{ status: 503, code: 'SlowDown' }, { status: 429, code: 'TooManyRequests' }, { status: 500, code: 'InternalError' }];
    let injected = 0;
    const fault = await startFaultServer(s3.endpoint, (n) => (n % 3 === 0 ? faults[injected++ % faults.length] : 'forward'));
    try {
      const location = s3.location();
      const src = join(dir.path, 'src-flaky');
      await makeSpool(src);
      const before = await manifest(src);
      const repo = await Repository.init(storage(location, { AWS_ENDPOINT_URL_S3: fault.endpoint }));
      const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
      await a.addTree('/spool', src);
      const snap = await a.commit();
      expect(snap.summary.errors).toBe(0);
      const out = join(dir.path, 'out-flaky');
      const r = await restore(repo, snap, { target: out });
      expect(r.errors).toBe(0);
      expect(await manifest(join(out, 'spool'))).toEqual(before);
      await repo.close();
      expect(injected).toBeGreaterThan(4);
      // What landed in the bucket is sound, read without the faults.
      const direct = await Repository.open(storage(location));
      expect((await check(direct, { readData: true })).errors).toEqual([]);
      await direct.close();
    } finally {
      await fault.stop();
    }
  });
});
