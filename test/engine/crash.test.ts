import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { check, Repository, restore } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { bytesOf, tempDir } from './helpers.js';
import { jsonLines, runCli, startCli } from './cli-helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir('dp-crash-');
});
afterEach(async () => {
  await dir.cleanup();
});

async function dataPacks(repoDir: string): Promise<number> {
  let n = 0;
  for (const sub of await readdir(join(repoDir, 'data')).catch(() => [] as string[])) {
    n += (await readdir(join(repoDir, 'data', sub))).filter((f) => !f.startsWith('.')).length;
  }
  return n;
}

test('kill -9 in the middle of a backup leaves a readable repository, and the next backup succeeds and reuses what was written', async () => {
  const repoDir = join(dir.path, 'repo');
  const dump = join(dir.path, 'dump.bin');
  // Incompressible, so that packs fill at the stream's pace: 48 MiB make about three 16 MiB packs.
  await writeFile(dump, bytesOf(77, 48 * 1024 * 1024));
  expect((await runCli(['repo', 'init', '--repo', repoDir])).code).toBe(0);

  // The command writes the dump, then hangs (long enough for a busy machine): the backup is killed while it waits.
  const child = startCli(['backup', '--repo', repoDir, '--tag', 'bm/pgsql', '--stdin-from', `cat ${dump}; sleep 120`, '--name', 'dump.bin']);
  const exited = new Promise<number | null>((r) => child.on('exit', (code, signal) => r(signal === 'SIGKILL' ? -9 : code)));
  const deadline = Date.now() + 60_000;
  while ((await dataPacks(repoDir)) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await dataPacks(repoDir)).toBeGreaterThanOrEqual(2);
  child.kill('SIGKILL');
  expect(await exited).toBe(-9);

  // Readable and consistent: no snapshot, nothing referencing missing data; the orphan packs are a warning.
  const repo = await Repository.open(new LocalStorage(repoDir));
  const c1 = await check(repo, { readData: true });
  expect(c1.errors).toEqual([]);
  expect(c1.snapshots).toBe(0);
  expect(c1.warnings.some((w) => w.includes('not referenced by any index'))).toBe(true);
  await repo.close();
  const checked = await runCli(['check', '--repo', repoDir]);
  expect(checked.code).toBe(0);

  // The lock of the dead process is stale and taken over; the packs it wrote are reused.
  const again = await runCli(['backup', '--repo', repoDir, '--tag', 'bm/pgsql', '--stdin-from', `cat ${dump}`, '--name', 'dump.bin', '--json']);
  expect(again.stderr).toBe('');
  expect(again.code).toBe(0);
  const summary = jsonLines(again.stdout).find((l) => l.type === 'summary')!;
  expect(summary.bytesAdded as number).toBeLessThan(24 * 1024 * 1024);
  const notices = jsonLines(again.stdout).filter((l) => l.type === 'notice').map((l) => l.message as string);
  expect(notices.some((m) => m.includes('stale lock'))).toBe(true);
  expect(notices.some((m) => m.includes('interrupted backup'))).toBe(true);

  const repo2 = await Repository.open(new LocalStorage(repoDir));
  const c2 = await check(repo2, { readData: true });
  expect(c2.errors).toEqual([]);
  expect(c2.warnings).toEqual([]);
  const snap = await repo2.findSnapshot('latest');
  const r = await restore(repo2, snap, { target: join(dir.path, 'out') });
  expect(r.errors).toBe(0);
  expect(r.bytes).toBe(48 * 1024 * 1024);
  await repo2.close();
});
