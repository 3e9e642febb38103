import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { check, openFile, PasswordError, Repository, restore } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { manifest, tempDir, type ManifestEntry } from './helpers.js';
import { createHash } from 'node:crypto';

// The golden repositories of each format version, checked in: every later version must keep reading them.
// Version 2 is encrypted, with this password (written by golden-maker.ts); version 3 is plain, its database
// stream compressed with a dictionary.
const V2_PASSWORD = 'golden repository of format 2';
const asRoot = process.getuid?.() === 0;

describe.each([
  { version: 1, fixture: 'golden-v1', password: undefined },
  { version: 2, fixture: 'golden-v2', password: V2_PASSWORD },
  { version: 3, fixture: 'golden-v3', password: undefined },
])('golden repository of format version $version', ({ version, fixture, password }) => {
  const GOLDEN = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url));
  let repo: Repository;
  let expected: { snapshots: Record<string, string>; latest?: unknown; day1: ManifestEntry[]; day2: ManifestEntry[]; dumpSha256: string; dumpSize: number };
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    repo = await Repository.open(new LocalStorage(join(GOLDEN, 'repo')), { password });
    expected = JSON.parse(await readFile(join(GOLDEN, 'expected.json'), 'utf8'));
    dir = await tempDir('dp-golden-');
  });
  afterAll(async () => {
    await repo.close();
    await dir.cleanup();
  });

  // The fixture was written by root: owners only compare when the test runs as root too.
  const comparable = (m: ManifestEntry[]) => m.map((e) => (asRoot ? e : { ...e, uid: 0, gid: 0 }));

  test('is of its format version, encrypted from version 2 on', async () => {
    expect(repo.config.version).toBe(version);
    expect(repo.encrypted).toBe(version === 2);
    // Version 3: the dump's chunks are compressed with a dictionary, which the tests below read with.
    expect(repo.index.dictionaries().size).toBe(version === 3 ? 1 : 0);
    await expect(repo.readReference('latest').then((b) => b && JSON.parse(b.toString()))).resolves.toEqual(expected.latest ?? null);
    if (password) await expect(Repository.open(new LocalStorage(join(GOLDEN, 'repo')), { password: 'not it', loadIndex: false })).rejects.toThrow(PasswordError);
  });

  test('check --read-data finds it intact', async () => {
    const r = await check(repo, { readData: true });
    expect(r.errors).toEqual([]);
    expect(r.snapshots).toBe(3);
  });

  test.each(['day1', 'day2'] as const)('%s restores exactly: contents, modes, times, symlinks, hard links, names', async (day) => {
    const snap = await repo.findSnapshot(expected.snapshots[day]);
    const out = join(dir.path, day);
    const s = await restore(repo, snap, { target: out });
    expect(s.errors).toBe(0);
    const got = await manifest(join(out, 'spool'));
    expect(comparable(asRoot ? got : got.map((e) => ({ ...e, uid: 0, gid: 0 })))).toEqual(comparable(expected[day]));
  });

  test('the database stream reads back byte for byte', async () => {
    const snap = await repo.findSnapshot(expected.snapshots.dump);
    const h = createHash('sha256');
    let n = 0;
    for await (const piece of openFile(repo, snap, '/pgsql/bj.dump')) {
      h.update(piece as Buffer);
      n += (piece as Buffer).length;
    }
    expect(n).toBe(expected.dumpSize);
    expect(h.digest('hex')).toBe(expected.dumpSha256);
  });
});
