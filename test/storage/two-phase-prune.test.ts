import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Archiver, check, prune, Repository, restore, type SnapshotInfo, type Storage } from '../../server/engine/index.js';
import { readLocks } from '../../server/engine/lock.js';
import { PRUNE_MARKS_REFERENCE, readPruneMarks } from '../../server/engine/prune-marks.js';
import { LocalStorage } from '../../server/storage/index.js';
import { S3Storage } from '../../server/storage/s3.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';
import { jsonLines, runCli } from '../engine/cli-helpers.js';
import { startS3, type TestS3 } from './s3-server.js';

// Two-phase prune on every backend: a prune marks, a later one deletes once the grace period has passed,
// and a backup that ran across the mark never loses a pack it references. The clock is the test's.

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;
let s3: TestS3;
let dir: { path: string; cleanup: () => Promise<void> };
const opened: S3Storage[] = [];
let n = 0;

beforeAll(async () => {
  s3 = await startS3();
  dir = await tempDir('dp-two-phase-');
});
afterAll(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
  await dir?.cleanup();
});

const backends: Record<string, () => Storage> = {
  local: () => new LocalStorage(join(dir.path, `repo${++n}`)),
  s3: () => {
    const s = new S3Storage(s3.location(), { env: s3.env });
    opened.push(s);
    return s;
  },
};

async function packNames(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const f of storage.list('data')) out.push(f.name);
  return out.sort();
}

/** A folder with these files (name -> seed), 300 kB of incompressible bytes each. */
async function folder(name: string, files: Record<string, number>): Promise<string> {
  const path = join(dir.path, `${name}-${++n}`);
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });
  for (const [f, seed] of Object.entries(files)) await writeFile(join(path, f), bytesOf(seed, 300_000));
  return path;
}

async function backup(repo: Repository, src: string, tag = 'mail/imap'): Promise<SnapshotInfo> {
  const a = new Archiver(repo, { server: 'mail1', tag, parent: 'none' });
  await a.addTree('/data', src);
  return a.commit();
}

async function restoresExactly(repo: Repository, snap: SnapshotInfo, src: string): Promise<void> {
  const out = join(dir.path, `out-${++n}`);
  const r = await restore(repo, snap, { target: out });
  expect(r.errors).toBe(0);
  expect(await manifest(join(out, 'data'))).toEqual(await manifest(src));
}

async function checksClean(repo: Repository): Promise<void> {
  const c = await check(repo, { readData: true });
  expect(c.errors).toEqual([]);
}

describe.each(Object.keys(backends))('two-phase prune on %s', (backend) => {
  test('a prune marks what no snapshot needs; only a prune after the grace period deletes it', async () => {
    const storage = backends[backend]();
    const repo = await Repository.init(storage);
    const t0 = Date.now();
    const oldSrc = await folder('old', { a: 1, b: 2 });
    const old = await backup(repo, oldSrc);
    const keptSrc = await folder('kept', { c: 3 });
    const kept = await backup(repo, keptSrc);
    await repo.deleteSnapshot(old.id);
    const before = await packNames(storage);

    const first = await prune(repo, { now: () => t0 });
    expect(first).toMatchObject({ packsDeleted: 0, bytesFreed: 0, packsUnmarked: 0 });
    expect(first.packsMarked).toBeGreaterThan(0);
    expect(first.packsPending).toBe(first.packsMarked);
    expect(await packNames(storage)).toEqual(before);
    expect([...(await readPruneMarks(storage)).values()].every((t) => t === t0)).toBe(true);
    await checksClean(repo);

    // A prune within the grace period deletes nothing, and does not move the marks' time.
    expect(await prune(repo, { now: () => t0 + GRACE - 1 })).toMatchObject({ packsDeleted: 0, packsMarked: 0, packsPending: first.packsMarked });
    expect([...(await readPruneMarks(storage)).values()].every((t) => t === t0)).toBe(true);

    const last = await prune(repo, { now: () => t0 + GRACE });
    expect(last.packsDeleted).toBe(first.packsMarked);
    expect(last.bytesFreed).toBeGreaterThan(500_000);
    expect(last.packsPending).toBe(0);
    expect((await packNames(storage)).length).toBe(before.length - first.packsMarked);
    expect((await readPruneMarks(storage)).size).toBe(0);
    expect(await storage.stat('reference', PRUNE_MARKS_REFERENCE)).toBeNull();
    await checksClean(repo);
    await restoresExactly(repo, kept, keptSrc);
    expect(await readLocks(storage)).toEqual([]);
    await repo.close();
  });

  test('a backup running across the mark reuses a blob of the marked pack: the pack outlives the grace period', async () => {
    const storage = backends[backend]();
    const repo = await Repository.init(storage);
    const t0 = Date.now();
    // a and b share a pack; only b stays needed, so prune repacks b and marks the old pack.
    const both = await folder('both', { a: 11, b: 12 });
    const first = await backup(repo, both);
    const bOnly = await folder('b-only', { b: 12 });
    const second = await backup(repo, bOnly);
    await repo.deleteSnapshot(first.id);

    // A backup that loaded the index before the prune, and whose lock the prune did not see (a listing
    // that lags on an eventually consistent store, or a lock taken over as stale).
    const other = await Repository.open(storage);
    const late = new Archiver(other, { server: 'mail1', tag: 'mail/imap', parent: 'none' });
    await late.start();
    for (const l of await readLocks(storage)) await storage.delete('lock', l.name);

    const marking = await prune(repo, { now: () => t0 });
    expect(marking.packsRepacked).toBe(1);
    expect(marking.packsDeleted).toBe(0);

    const aOnly = await folder('a-only', { a: 11 });
    await late.addTree('/data', aOnly);
    const third = await late.commit();
    // The blob of `a` was reused from the marked pack, not stored again.
    expect(third.summary.bytesAdded).toBeLessThan(100_000);
    await other.close();

    const sweeping = await prune(repo, { now: () => t0 + GRACE + HOUR });
    expect(sweeping.packsUnmarked).toBe(1);
    await checksClean(repo);
    await restoresExactly(repo, second, bOnly);
    await restoresExactly(repo, third, aOnly);

    // Once the last snapshot that needs `a` is gone, the pack is marked again and goes after its grace.
    await repo.deleteSnapshot(third.id);
    const t1 = t0 + 2 * GRACE;
    expect((await prune(repo, { now: () => t1 })).packsMarked).toBeGreaterThan(0);
    expect((await prune(repo, { now: () => t1 + GRACE })).packsDeleted).toBeGreaterThan(0);
    await checksClean(repo);
    await restoresExactly(repo, second, bOnly);
    await repo.close();
  });

  test('a backup that starts after the mark stores the blobs of marked packs again; the marked pack then goes', async () => {
    const storage = backends[backend]();
    const repo = await Repository.init(storage);
    const t0 = Date.now();
    const src = await folder('again', { x: 21, y: 22 });
    const first = await backup(repo, src);
    await repo.deleteSnapshot(first.id);
    const marking = await prune(repo, { now: () => t0 });
    expect(marking.packsMarked).toBeGreaterThan(0);
    const marked = [...(await readPruneMarks(storage)).keys()];

    // Another process: the marks are read at the backup's start.
    const other = await Repository.open(storage);
    const again = await backup(other, src);
    expect(again.summary.bytesAdded).toBeGreaterThan(500_000);
    await other.close();

    const sweeping = await prune(repo, { now: () => t0 + GRACE });
    expect(sweeping.packsUnmarked).toBe(0);
    expect(sweeping.packsDeleted).toBe(marked.length);
    for (const pack of marked) expect(await storage.stat('data', pack)).toBeNull();
    await checksClean(repo);
    await restoresExactly(repo, again, src);
    await repo.close();
  });
});

test('the command line marks by default, deletes with --grace 0, and refuses a bad duration with exit 2', async () => {
  const repoDir = join(dir.path, 'cli-repo');
  expect((await runCli(['repo', 'init', '--repo', repoDir])).code).toBe(0);
  for (const seed of [31, 32]) expect((await runCli(['backup', '--repo', repoDir, '--tag', 'bm/conf', await folder('cli', { f: seed })])).code).toBe(0);
  const summaryOf = (stdout: string) => jsonLines(stdout).find((l) => l.type === 'summary') as Record<string, unknown>;

  const forget = await runCli(['forget', '--repo', repoDir, '--keep-last', '1', '--prune', '--json']);
  expect(forget.code).toBe(0);
  const marked = summaryOf(forget.stdout).prune as { packsMarked: number; packsDeleted: number; packsPending: number };
  expect(marked.packsDeleted).toBe(0);
  expect(marked.packsMarked).toBeGreaterThan(0);
  const human = await runCli(['prune', '--repo', repoDir, '--grace', '12h']);
  expect(human.code).toBe(0);
  expect(human.stdout).toMatch(new RegExp(`${marked.packsPending} packs \\(.+\\) marked, deleted by a prune once their grace period has passed`));

  const bad = await runCli(['prune', '--repo', repoDir, '--grace', '2 weeks']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/expected a duration such as 24h, 90m, 7d or 0, got "2 weeks"/);

  const now = await runCli(['prune', '--repo', repoDir, '--grace', '0', '--json']);
  expect(now.code).toBe(0);
  expect(summaryOf(now.stdout)).toMatchObject({ packsDeleted: marked.packsPending, packsPending: 0 });
  expect((await runCli(['check', '--repo', repoDir, '--read-data'])).code).toBe(0);
});
