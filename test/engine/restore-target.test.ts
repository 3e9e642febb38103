import { link, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Archiver, restore, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { forgeSnapshot } from './forge.js';
import { newRepo, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let outside: string;
let target: string;

beforeEach(async () => {
  dir = await tempDir('dp-escape-');
  repo = await newRepo(dir.path);
  outside = join(dir.path, 'outside');
  target = join(dir.path, 'target');
  await mkdir(outside);
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function backup(src: string): Promise<SnapshotInfo> {
  const a = new Archiver(repo, { server: 's', tag: 'files' });
  await a.addTree('/t', src);
  return a.commit();
}

/** The newer snapshot has `esc` as a symlink to a folder outside the target; the older one has it as a directory. */
async function twoGenerations(): Promise<{ older: SnapshotInfo; newer: SnapshotInfo }> {
  const src = join(dir.path, 'src');
  await mkdir(join(src, 'esc'), { recursive: true });
  await writeFile(join(src, 'esc', 'passwd'), 'root:x:0:0\n');
  const older = await backup(src);
  await rm(join(src, 'esc'), { recursive: true });
  await symlink(outside, join(src, 'esc'));
  const newer = await backup(src);
  return { older, newer };
}

describe('a restore never leaves its target', () => {
  test('restoring the newer snapshot (esc a symlink outside) then the older one (esc a directory) writes inside the target', async () => {
    const { older, newer } = await twoGenerations();
    const first = await restore(repo, newer, { target });
    expect(first.errors).toBe(0);
    expect((await lstat(join(target, 't', 'esc'))).isSymbolicLink()).toBe(true);

    const second = await restore(repo, older, { target });
    expect(second.errors).toBe(0);
    expect(await readdir(outside)).toEqual([]);
    expect((await lstat(join(target, 't', 'esc'))).isDirectory()).toBe(true);
    expect(await readFile(join(target, 't', 'esc', 'passwd'), 'utf8')).toBe('root:x:0:0\n');
  });

  test('forged trees (a directory under the symlink, a deeper chain, a hard link, an empty file, a file of several blobs) stay inside', async () => {
    const { newer } = await twoGenerations();
    await restore(repo, newer, { target });
    const hard = { node: { type: 'file' as const, links: 2, inode: '77', device: '1', size: 5 }, content: Buffer.from('hello') };
    const forged = await forgeSnapshot(repo, newer, {
      t: {
        'a-primary': hard,
        esc: {
          sub: { f: 'under the symlink' },
          a: { b: { c: { deep: 'deeper chain' } } },
          empty: '',
          hl: hard,
          pieces: { node: { type: 'file' as const }, content: [Buffer.from('first '), Buffer.from('second')] },
        },
      },
    });
    const r = await restore(repo, forged, { target });
    expect(await readdir(outside)).toEqual([]);
    expect(r.errors).toBe(0);
    expect((await lstat(join(target, 't', 'esc'))).isDirectory()).toBe(true);
    expect(await readFile(join(target, 't/esc/sub/f'), 'utf8')).toBe('under the symlink');
    expect(await readFile(join(target, 't/esc/a/b/c/deep'), 'utf8')).toBe('deeper chain');
    expect((await stat(join(target, 't/esc/empty'))).size).toBe(0);
    expect(await readFile(join(target, 't/esc/pieces'), 'utf8')).toBe('first second');
    expect((await stat(join(target, 't/esc/hl'))).ino).toBe((await stat(join(target, 't/a-primary'))).ino);
  });

  test('a symlink planted deeper in the target is replaced by the directory the tree wants, never followed', async () => {
    const { older } = await twoGenerations();
    await mkdir(join(target, 't'), { recursive: true });
    await symlink(outside, join(target, 't', 'esc'));
    const r = await restore(repo, older, { target, include: ['/t/esc'] });
    expect(r.errors).toBe(0);
    expect(await readdir(outside)).toEqual([]);
    expect(await readFile(join(target, 't', 'esc', 'passwd'), 'utf8')).toBe('root:x:0:0\n');
  });

  test('a file in the target hard-linked to a file outside is replaced, not written through', async () => {
    const { older } = await twoGenerations();
    await writeFile(join(outside, 'shadow'), 'secret');
    await mkdir(join(target, 't', 'esc'), { recursive: true });
    await link(join(outside, 'shadow'), join(target, 't', 'esc', 'passwd'));
    const r = await restore(repo, older, { target });
    expect(r.errors).toBe(0);
    expect(await readFile(join(outside, 'shadow'), 'utf8')).toBe('secret');
    expect(await readFile(join(target, 't', 'esc', 'passwd'), 'utf8')).toBe('root:x:0:0\n');
  });

  test('a directory that cannot be restored skips its whole subtree, counted and reported once', async () => {
    const { newer } = await twoGenerations();
    await mkdir(target);
    await writeFile(join(target, 'blocked'), 'a file where the tree wants a directory');
    const forged = await forgeSnapshot(repo, newer, { blocked: { x: 'x', y: { z: 'z' } }, ok: 'fine' });
    const errors: string[] = [];
    const r = await restore(repo, forged, { target, progress: { error: (p) => errors.push(p) } });
    expect(errors).toEqual([join(target, 'blocked')]);
    expect(r.errors).toBe(1);
    expect(r.skipped).toBe(3);
    expect(await readFile(join(target, 'ok'), 'utf8')).toBe('fine');
  });

  test('a secret-bearing file keeps its recorded mode over a more readable file in the target', async () => {
    const src = join(dir.path, 'conf');
    await mkdir(src);
    await writeFile(join(src, 'bm.ini'), 'password=s3cret\n');
    await chmod(join(src, 'bm.ini'), 0o600);
    const snap = await backup(src);
    await mkdir(join(target, 't'), { recursive: true });
    await writeFile(join(target, 't', 'bm.ini'), 'old');
    await chmod(join(target, 't', 'bm.ini'), 0o644);
    const old = process.umask(0);
    try {
      expect((await restore(repo, snap, { target })).errors).toBe(0);
    } finally {
      process.umask(old);
    }
    expect((await stat(join(target, 't', 'bm.ini'))).mode & 0o777).toBe(0o600);
  });
});
