import { chmod, lstat, mkdir, open, readdir, readFile, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { check, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { tempDir } from '../engine/helpers.js';
import { storageConformance } from './conformance.js';

storageConformance('local directory', async () => {
  const d = await tempDir('dp-storage-');
  return { storage: new LocalStorage(join(d.path, 'repo')), cleanup: d.cleanup };
});

test('local storage spreads packs over data/00..ff and leaves no temp file behind', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  expect(await readdir(join(d.path, 'repo/data'))).toEqual(['ab']);
  expect(await readdir(join(d.path, 'repo/data/ab'))).toEqual(['ab' + '0'.repeat(62)]);
  await d.cleanup();
});

test('a reference sits beside config, where scripts read it, and is not listed with the repository files', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('config', 'config', Buffer.from('cfg'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  await s.write('reference', 'latest', Buffer.from('{"generation":null}\n'));
  expect(await readFile(join(d.path, 'repo/latest'), 'utf8')).toBe('{"generation":null}\n');
  const refs: string[] = [];
  for await (const f of s.list('reference')) refs.push(f.name);
  expect(refs).toEqual(['latest']);
  await d.cleanup();
});

test('temp files of a writer that died are removed, those of a live writer are left', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  const dead = join(d.path, 'repo/data/ab', `.tmp-${'ab' + '1'.repeat(62)}-${2 ** 22 + 4321}-0badf00d`);
  const live = join(d.path, 'repo', `.tmp-latest-${process.pid}-0badf00d`);
  await writeFile(dead, 'half');
  await writeFile(live, 'being written');
  expect(await s.removeStaleTempFiles()).toBe(1);
  expect(await readdir(join(d.path, 'repo/data/ab'))).toEqual(['ab' + '0'.repeat(62)]);
  expect(await readFile(live, 'utf8')).toBe('being written');
  await d.cleanup();
});

test('a pack written in parts goes to a temp file at the root, which a dead writer\'s cleanup removes and an abort or a commit leaves no trace of', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  const root = join(d.path, 'repo');
  const name = 'cd' + '0'.repeat(62);
  const parts = s.writeParts('data');
  await parts.append(Buffer.from('half a pack'));
  const temps = (await readdir(root)).filter((n) => n.startsWith('.tmp-'));
  expect(temps).toHaveLength(1);
  expect(temps[0]).toMatch(new RegExp(`^\\.tmp-parts-data-${process.pid}-[0-9a-f]{8}$`));
  // The same file of a writer that died is stale.
  await writeFile(join(root, temps[0].replace(`-${process.pid}-`, `-${2 ** 22 + 4321}-`)), 'half');
  expect(await s.removeStaleTempFiles()).toBe(1);
  await parts.append(Buffer.from(', the rest'));
  await parts.commit(name);
  expect((await readFile(join(root, 'data/cd', name))).toString()).toBe('half a pack, the rest');
  const dropped = s.writeParts('data');
  await dropped.append(Buffer.from('never named'));
  await dropped.abort();
  expect((await readdir(root)).filter((n) => n.startsWith('.'))).toEqual([]);
  await d.cleanup();
});

describe('a repository readable by its owner only', () => {
  async function modes(root: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (p: string): Promise<void> => {
      const st = await lstat(p);
      out.push(`${p.slice(root.length) || '/'} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) for (const n of await readdir(p)) await walk(join(p, n));
    };
    await walk(root);
    return out;
  }

  test('folders are 0700 and files 0600 whatever the umask (packs, indexes, snapshots, locks, references)', async () => {
    const d = await tempDir('dp-storage-');
    const root = join(d.path, 'repo');
    const old = process.umask(0o002);
    try {
      const s = new LocalStorage(root);
      await s.write('config', 'config', Buffer.from('cfg'));
      await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
      await s.write('index', 'cd' + '0'.repeat(62), Buffer.from('x'));
      await s.write('snapshot', 'ef' + '0'.repeat(62), Buffer.from('x'));
      await s.write('lock', 'l1', Buffer.from('x'));
      await s.write('reference', 'latest', Buffer.from('x'));
    } finally {
      process.umask(old);
    }
    const all = await modes(root);
    expect(all.filter((m) => !/ (700|600)$/.test(m))).toEqual([]);
    expect(all.filter((m) => m.endsWith(' 700'))).toEqual(['/ 700', '/data 700', '/data/ab 700', '/index 700', '/locks 700', '/snapshots 700']);
    await d.cleanup();
  });

  test('init on an existing folder tightens it; check warns about a loose repository; init again tightens it', async () => {
    const d = await tempDir('dp-storage-');
    const root = join(d.path, 'repo');
    await mkdir(root, { mode: 0o755 });
    await chmod(root, 0o755);
    const repo = await Repository.init(new LocalStorage(root));
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    expect((await check(repo)).warnings).toEqual([]);
    await repo.writeReference('latest', Buffer.from('{}'));
    await chmod(root, 0o755);
    await chmod(join(root, 'config'), 0o644);
    await chmod(join(root, 'latest'), 0o664);
    const loose = await check(repo);
    expect(loose.errors).toEqual([]);
    expect(loose.warnings).toHaveLength(1);
    expect(loose.warnings[0]).toMatch(/3 repository file\(s\) or folder\(s\) can be read or written by others than their owner/);
    expect(loose.warnings[0]).toContain(`${join(root, 'config')} (0644)`);
    await expect(Repository.init(new LocalStorage(root))).rejects.toThrow(/already exists .*3 of its files and folders are now readable by their owner only/);
    expect((await check(repo)).warnings).toEqual([]);
    await repo.close();
    await d.cleanup();
  });
});

describe('writes that run out of disk', () => {
  /** Opens real files whose writes stop after `room` bytes: short writes, then ENOSPC (as a full disk does). */
  function fullAfter(room: number, shortBy = 7) {
    return async (path: string, flags: number, mode: number) => {
      const fh = await open(path, flags, mode);
      let written = 0;
      return {
        chmod: (m: number) => fh.chmod(m),
        sync: () => fh.sync(),
        close: () => fh.close(),
        writev: async (bufs: Uint8Array[], pos?: number | null) => {
          if (written >= room) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          const all = Buffer.concat(bufs);
          const n = Math.min(all.length, shortBy, room - written);
          const r = await fh.write(all, 0, n, pos ?? null);
          written += r.bytesWritten;
          return { bytesWritten: r.bytesWritten, buffers: bufs };
        },
      } as unknown as FileHandle;
    };
  }

  test('a short write is finished, not left short', async () => {
    const d = await tempDir('dp-storage-');
    const s = new LocalStorage(join(d.path, 'repo'), fullAfter(1_000_000));
    const data = [Buffer.from('a pack '), Buffer.from('written in '), Buffer.from('short pieces')];
    await s.write('data', 'ab' + '0'.repeat(62), data);
    expect((await s.read('data', 'ab' + '0'.repeat(62))).toString()).toBe('a pack written in short pieces');
    await d.cleanup();
  });

  test('a full disk fails a part\'s append, removes the temp file, and says the disk is full', async () => {
    const d = await tempDir('dp-storage-');
    const s = new LocalStorage(join(d.path, 'repo'), fullAfter(20));
    const parts = s.writeParts('data');
    await parts.append(Buffer.alloc(10, 1));
    await expect(parts.append(Buffer.alloc(100, 1))).rejects.toThrow(/^the repository's disk is full \(\d+ bytes free\): writing data \(in parts\)$/);
    await parts.abort();
    expect((await readdir(join(d.path, 'repo'))).filter((n) => n.startsWith('.'))).toEqual([]);
    await d.cleanup();
  });

  test('a full disk fails the write before the rename, removes the temp file, and says the disk is full', async () => {
    const d = await tempDir('dp-storage-');
    const s = new LocalStorage(join(d.path, 'repo'), fullAfter(20));
    const name = 'ab' + '0'.repeat(62);
    await expect(s.write('data', name, Buffer.alloc(100, 1))).rejects.toThrow(/^the repository's disk is full \(\d+ bytes free\): writing data ab0000000000$/);
    expect(await readdir(join(d.path, 'repo/data/ab'))).toEqual([]);
    expect(await s.stat('data', name)).toBeNull();
    await d.cleanup();
  });
});
