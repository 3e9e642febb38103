import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { applyPolicy } from '../../server/engine/forget-policy.js';
import { Archiver, check, forgetSnapshots, prune, restore, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { bytesOf, manifest, newRepo, tempDir } from './helpers.js';
import { jsonLines, runCli } from './cli-helpers.js';

const snapAt = (id: string, time: string): SnapshotInfo => ({ id, time, tree: '', paths: [], hostname: 'h', server: 's', tag: 't', program: 'p', version: 1, summary: {} as SnapshotInfo['summary'] });

describe('retention policy', () => {
  const times = [
    '2026-01-31T22:00:00', '2026-02-01T01:00:00', '2026-02-01T23:00:00', '2026-02-02T01:00:00', '2026-02-09T01:00:00',
    '2026-02-10T01:00:00', '2026-02-10T13:00:00', '2026-03-01T01:00:00', '2026-03-02T01:00:00',
  ].map((t, i) => snapAt(`id${i}`, new Date(t).toISOString()));

  test('keep-daily keeps the newest snapshot of each of the last N days that have one', () => {
    const d = applyPolicy(times, { keepDaily: 3 });
    expect(d.keep.map((k) => k.snapshot.id)).toEqual(['id8', 'id7', 'id6']);
    expect(d.remove.length).toBe(6);
  });

  test('weekly and monthly rules add the newest of older weeks and months', () => {
    const d = applyPolicy(times, { keepDaily: 1, keepWeekly: 3, keepMonthly: 3 });
    const kept = d.keep.map((k) => k.snapshot.id);
    expect(kept).toContain('id8'); // newest: daily, weekly and monthly
    expect(kept).toContain('id6'); // newest of week 7 and of February
    expect(kept).toContain('id0'); // newest of January
    expect(kept).not.toContain('id1');
  });

  test('a policy without any rule is refused instead of forgetting everything', () => {
    expect(() => applyPolicy(times, {})).toThrow(/at least one --keep/);
  });
});

describe('forget and prune on a real repository', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let repo: Repository;
  beforeEach(async () => {
    dir = await tempDir('dp-retention-');
    repo = await newRepo(dir.path);
  });
  afterEach(async () => {
    await repo.close();
    await dir.cleanup();
  });

  test('forget keeps what the policy says, prune frees the data only the forgotten snapshots used', async () => {
    const src = join(dir.path, 'src');
    await mkdir(src);
    await writeFile(join(src, 'kept-all-along'), bytesOf(1, 300_000, true));
    const snaps: SnapshotInfo[] = [];
    for (let day = 1; day <= 4; day++) {
      // Each day a big message that the next day deletes: only the last two days' survive retention.
      await rm(join(src, `day${day - 1}`), { force: true });
      await writeFile(join(src, `day${day}`), bytesOf(100 + day, 3_000_000));
      const a = new Archiver(repo, { server: 's', tag: 'mail/imap', time: new Date(`2026-03-0${day}T01:00:00`) });
      await a.addTree('/spool', src);
      snaps.push(await a.commit());
    }
    const m4 = await manifest(src);
    const before = await repoSize(repo);
    const f = await forgetSnapshots(repo, { keepDaily: 2 });
    expect(f.removed).toBe(2);
    expect((await repo.listSnapshots()).map((s) => s.id)).toEqual([snaps[2].id, snaps[3].id]);

    const p = await prune(repo, { grace: 0 });
    expect(p.bytesFreed).toBeGreaterThan(5_500_000);
    expect(await repoSize(repo)).toBeLessThan(before - 5_500_000);
    const c = await check(repo, { readData: true });
    expect(c.errors).toEqual([]);
    expect(c.warnings).toEqual([]);
    const out = join(dir.path, 'out');
    const rr = await restore(repo, snaps[3], { target: out });
    expect(rr.damage).toEqual([]);
    expect(await manifest(join(out, 'spool'))).toEqual(m4);
    // A second prune finds nothing to do.
    expect((await prune(repo, { grace: 0 })).bytesFreed).toBe(0);
  });

  test('the CLI forget --prune reports what it kept and why', async () => {
    const src = join(dir.path, 'src');
    await mkdir(src);
    for (let i = 0; i < 3; i++) {
      await writeFile(join(src, `f${i}`), bytesOf(i + 7, 100_000));
      const a = new Archiver(repo, { server: 's', tag: 'mail/imap' });
      await a.addTree('/spool', src);
      await a.commit();
    }
    const r = await runCli(['forget', '--repo', join(dir.path, 'repo'), '--keep-last', '1', '--prune', '--grace', '0', '--json']);
    expect(r.code).toBe(0);
    const summary = jsonLines(r.stdout).find((l) => l.type === 'summary') as { removed: number; prune: { packsDeleted: number; packsRepacked: number } };
    expect(summary.removed).toBe(2);
    expect(summary.prune.packsDeleted + summary.prune.packsRepacked).toBeGreaterThan(0);
    const bad = await runCli(['forget', '--repo', join(dir.path, 'repo'), '--keep-daily', 'three']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/whole number/);
  });
});

async function repoSize(repo: Repository): Promise<number> {
  let n = 0;
  for await (const f of repo.storage.list('data')) n += f.size;
  return n;
}
