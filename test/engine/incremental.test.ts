import { mkdir, rename, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BlobType } from '../../server/engine/blob-index.js';
import { Archiver, diffSnapshots, restore, type Repository } from '../../server/engine/index.js';
import { bytesOf, manifest, newRepo, packTypes, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let src: string;

beforeEach(async () => {
  dir = await tempDir('dp-incr-');
  repo = await newRepo(dir.path);
  src = join(dir.path, 'spool');
  for (const user of ['alice', 'bob']) {
    for (const folder of ['cur', '.Sent/cur', '.Archive/cur']) await mkdir(join(src, user, 'Maildir', folder), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, user, 'Maildir/cur', `17000000${i}.M${i}P1.mx:2,`), bytesOf(i + (user === 'bob' ? 100 : 0), 3000 + i * 50, true));
  }
  // The same attachment-bearing message delivered to both users: one blob.
  const shared = bytesOf(999, 40_000, true);
  await writeFile(join(src, 'alice/Maildir/cur/shared.M1:2,'), shared);
  await writeFile(join(src, 'bob/Maildir/cur/shared.M1:2,'), shared);
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function backup(): Promise<Awaited<ReturnType<Archiver['commit']>>> {
  const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
  await a.addTree('/spool', src);
  return a.commit();
}

describe('incremental backups', () => {
  test('identical files are stored once, across files and mailboxes', async () => {
    const s = await backup();
    expect(s.summary.filesNew).toBe(42);
    // 40 distinct messages + 1 shared one.
    let dataBlobs = 0;
    for (const [, loc] of repo.index.entries()) if (loc.type === BlobType.Data) dataBlobs++;
    expect(dataBlobs).toBe(41);
  });

  test('a second backup of unchanged data reads nothing and adds no data pack', async () => {
    await backup();
    const before = await packTypes(repo);
    const s = await backup();
    expect(s.summary.filesUnmodified).toBe(42);
    expect(s.summary.bytesRead).toBe(0);
    const after = await packTypes(repo);
    const added = [...after.keys()].filter((k) => !before.has(k));
    for (const p of added) expect([...after.get(p)!]).toEqual([BlobType.Tree]);
  });

  test('a Maildir flag change and an IMAP move are recognised by inode: no file read again', async () => {
    const first = await backup();
    // Flag change: Dovecot renames ...:2, to ...:2,S in place.
    for (let i = 0; i < 5; i++) await rename(join(src, 'alice/Maildir/cur', `17000000${i}.M${i}P1.mx:2,`), join(src, 'alice/Maildir/cur', `17000000${i}.M${i}P1.mx:2,S`));
    // Move to another folder.
    for (let i = 5; i < 8; i++) await rename(join(src, 'alice/Maildir/cur', `17000000${i}.M${i}P1.mx:2,`), join(src, 'alice/Maildir/.Archive/cur', `17000000${i}.M${i}P1.mx:2,S`));
    // New mail and a deletion, to check they are not mistaken for renames.
    await writeFile(join(src, 'bob/Maildir/cur/new-message:2,'), bytesOf(4242, 7000, true));
    await rm(join(src, 'bob/Maildir/cur/170000000.M0P1.mx:2,'));
    const second = await backup();
    expect(second.summary.filesRenamed).toBe(8);
    expect(second.summary.filesNew).toBe(1);
    expect(second.summary.bytesRead).toBe(7000);
    expect(second.parent).toBe(first.id);

    const out = join(dir.path, 'out');
    const r = await restore(repo, second, { target: out });
    expect(r.errors).toBe(0);
    expect(await manifest(join(out, 'spool'))).toEqual(await manifest(src));

    const changes = [];
    for await (const c of diffSnapshots(repo, first, second)) if (c.type === 'file') changes.push(`${c.kind} ${c.path}`);
    expect(changes).toContain('added /spool/bob/Maildir/cur/new-message:2,');
    expect(changes).toContain('removed /spool/bob/Maildir/cur/170000000.M0P1.mx:2,');
    expect(changes).toContain('added /spool/alice/Maildir/.Archive/cur/170000005.M5P1.mx:2,S');
    expect(changes.filter((c) => c.startsWith('added')).length).toBe(9);
  });

  test('every generation restores on its own after later ones', async () => {
    const first = await backup();
    const m1 = await manifest(src);
    await writeFile(join(src, 'alice/Maildir/cur/later:2,'), 'later');
    await backup();
    const out = join(dir.path, 'out1');
    await restore(repo, first, { target: out });
    expect(await manifest(join(out, 'spool'))).toEqual(m1);
  });

  test('a missing source path fails with the path in the message and leaves no snapshot', async () => {
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await expect(a.addTree('/missing', join(src, 'does-not-exist'))).rejects.toThrow(/does-not-exist/);
    await a.abort();
    expect(await repo.listSnapshots()).toEqual([]);
  });
});
