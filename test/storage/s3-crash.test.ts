import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Archiver, check, Repository, restore, type SnapshotInfo } from '../../server/engine/index.js';
import { readLocks } from '../../server/engine/lock.js';
import { S3Storage } from '../../server/storage/s3.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';
import { jsonLines, runCli, startCli } from '../engine/cli-helpers.js';
import { startS3, type TestS3 } from './s3-server.js';

// kill -9 of the real command line in the middle of a backup and of a prune into s3rver: the bucket then
// checks clean with --read-data, and every snapshot restores exactly (test/engine/crash.test.ts does the
// same on a local directory).

let s3: TestS3;
let dir: { path: string; cleanup: () => Promise<void> };
const opened: S3Storage[] = [];

beforeAll(async () => {
  s3 = await startS3();
  dir = await tempDir('dp-s3-crash-');
});
afterAll(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
  await dir?.cleanup();
});

function storage(location: string): S3Storage {
  const s = new S3Storage(location, { env: s3.env });
  opened.push(s);
  return s;
}

async function count(s: S3Storage, type: 'data' | 'lock' | 'index'): Promise<number> {
  let n = 0;
  for await (const _ of s.list(type)) n++;
  return n;
}

async function until(what: string, cond: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function killed(child: ReturnType<typeof startCli>): Promise<number | null> {
  return new Promise((r) => child.on('exit', (code, signal) => r(signal === 'SIGKILL' ? -9 : code)));
}

test('kill -9 in the middle of a backup into S3 leaves a bucket that checks clean; the next backup reuses what was uploaded', async () => {
  const location = s3.location();
  const s = storage(location);
  const dump = join(dir.path, 'dump.bin');
  // Incompressible: 48 MiB make about three 16 MiB packs, uploaded at the stream's pace.
  await writeFile(dump, bytesOf(77, 48 * 1024 * 1024));
  expect((await runCli(['repo', 'init', '--repo', location], { env: s3.env })).code).toBe(0);

  const child = startCli(['backup', '--repo', location, '--tag', 'bm/pgsql', '--stdin-from', `cat ${dump}; sleep 30`, '--name', 'dump.bin'], { env: s3.env });
  const exit = killed(child);
  await until('two uploaded packs', async () => (await count(s, 'data')) >= 2);
  child.kill('SIGKILL');
  expect(await exit).toBe(-9);

  const repo = await Repository.open(s);
  const c1 = await check(repo, { readData: true });
  expect(c1.errors).toEqual([]);
  expect(c1.snapshots).toBe(0);
  expect(c1.warnings.some((w) => w.includes('not referenced by any index'))).toBe(true);
  await repo.close();

  const again = await runCli(['backup', '--repo', location, '--tag', 'bm/pgsql', '--stdin-from', `cat ${dump}`, '--name', 'dump.bin', '--json'], { env: s3.env });
  expect(again.stderr).toBe('');
  expect(again.code).toBe(0);
  const lines = jsonLines(again.stdout);
  expect((lines.find((l) => l.type === 'summary')!.bytesAdded as number) < 24 * 1024 * 1024).toBe(true);
  const notices = lines.filter((l) => l.type === 'notice').map((l) => l.message as string);
  expect(notices.some((m) => m.includes('stale lock'))).toBe(true);
  expect(notices.some((m) => m.includes('interrupted backup'))).toBe(true);

  const repo2 = await Repository.open(s);
  const c2 = await check(repo2, { readData: true });
  expect(c2.errors).toEqual([]);
  expect(c2.warnings).toEqual([]);
  const out = join(dir.path, 'out-backup');
  const r = await restore(repo2, await repo2.findSnapshot('latest'), { target: out });
  expect(r.errors).toBe(0);
  expect(r.bytes).toBe(48 * 1024 * 1024);
  const restored = (await manifest(out)).find((e) => e.path.endsWith('dump.bin'));
  expect(restored?.sha256).toBe(createHash('sha256').update(await readFile(dump)).digest('hex'));
  await repo2.close();
}, 300_000);

test('kill -9 at several points of a prune on S3 loses nothing: each time the bucket checks clean and every snapshot restores exactly', async () => {
  const location = s3.location();
  const s = storage(location);
  // Small packs, so that the prune has many packs to delete and rewrite, and takes a while.
  const repo = await Repository.init(s, { packSize: 192 * 1024 });
  const sources: { snap: SnapshotInfo; src: string }[] = [];
  for (let day = 0; day < 6; day++) {
    const src = join(dir.path, `day${day}`);
    await mkdir(src, { recursive: true });
    // Each day keeps half of the day before's mail and adds new: forgetting old days leaves packs partly used.
    for (let i = 0; i < 24; i++) await writeFile(join(src, `m${day}-${i}`), bytesOf(1000 * day + i, 40_000));
    for (let i = 0; i < 12; i++) await writeFile(join(src, `m${day - 1}-${i}`), bytesOf(1000 * (day - 1) + i, 40_000));
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap', parent: 'none' });
    await a.addTree('/spool', src);
    sources.push({ snap: await a.commit(), src });
  }
  for (const { snap } of sources.slice(0, 3)) await repo.deleteSnapshot(snap.id);
  const kept = sources.slice(3);
  await repo.close();
  const expected = await Promise.all(kept.map((k) => manifest(k.src)));

  const indexesBefore = new Set<string>();
  for await (const f of s.list('index')) indexesBefore.add(f.name);
  let interrupted = 0;
  for (const delayMs of [0, 40, 120, 300, 700]) {
    const child = startCli(['prune', '--repo', location, '--grace', '0'], { env: s3.env });
    const exit = killed(child);
    await until('the prune to take its lock', async () => (await count(s, 'lock')) > 0 || child.exitCode !== null);
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGKILL');
    const code = await exit;
    // Killed while it held its lock (not before, not after): mid-prune.
    if (code === -9 && (await readLocks(s)).length > 0) interrupted++;

    const r = await Repository.open(s);
    const c = await check(r, { readData: true });
    expect(c.errors).toEqual([]);
    for (const [i, k] of kept.entries()) {
      const out = join(dir.path, `out-prune-${delayMs}-${i}`);
      const rr = await restore(r, await r.loadSnapshot(k.snap.id), { target: out });
      expect(rr.errors).toBe(0);
      expect(await manifest(join(out, 'spool'))).toEqual(expected[i]);
    }
    await r.close();
  }
  expect(interrupted).toBeGreaterThan(0);

  // A prune left to finish takes the dead one's lock over and completes the work.
  const done = await runCli(['prune', '--repo', location, '--grace', '0', '--json'], { env: s3.env });
  expect(done.code).toBe(0);
  const final = await Repository.open(s);
  const c = await check(final, { readData: true });
  expect(c.errors).toEqual([]);
  expect(c.warnings).toEqual([]);
  let changed = false;
  for await (const f of s.list('index')) if (!indexesBefore.has(f.name)) changed = true;
  expect(changed).toBe(true);
  await final.close();
}, 600_000);
