import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { bytesOf, manifest, tempDir, type ManifestEntry } from '../engine/helpers.js';
import { jsonLines, runCli, startCli } from '../engine/cli-helpers.js';

// kill -9 at random points of backup, forget --prune, prune and restore, with the real command line; then nothing
// is lost: `check --read-data` finds no error and every remaining snapshot restores exactly what was backed up.
// DP_RELIABILITY_KILLS sets how many kills (20 by default, for CI; 100 for the figures in the README).

const KILLS = Number(process.env.DP_RELIABILITY_KILLS ?? 20);
const SEED = Number(process.env.DP_RELIABILITY_SEED ?? Date.now() % 1_000_000);
const dirs: { cleanup: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.cleanup();
});

/** A seeded generator, so that a failing run can be replayed with DP_RELIABILITY_SEED. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

type Op = 'backup' | 'forget --prune' | 'prune' | 'restore';
const OPS: Op[] = ['backup', 'forget --prune', 'prune', 'restore'];

it(`kill -9 at ${KILLS} random points across backup, forget --prune, prune and restore loses nothing`, async () => {
  const rnd = random(SEED);
  const d = await tempDir('dp-kill-');
  dirs.push(d);
  const src = join(d.path, 'src');
  const repo = join(d.path, 'repo');
  let round = 0;
  // A mail-spool-like tree: many small files and a few large, incompressible ones; each round changes some.
  const mutate = async () => {
    round++;
    for (let i = 0; i < 120; i++) {
      if (round > 1 && rnd() > 0.2) continue;
      await mkdir(join(src, `box${i % 6}`), { recursive: true });
      await writeFile(join(src, `box${i % 6}`, `${i}.eml`), bytesOf(round * 1000 + i, 1000 + Math.floor(rnd() * 60_000), true));
    }
    const big = Math.floor(rnd() * 3);
    await writeFile(join(src, `big${big}.bin`), bytesOf(round * 7 + big, 6 * 1024 * 1024 + Math.floor(rnd() * 1024 * 1024)));
  };
  await mutate();
  expect((await runCli(['repo', 'init', '--repo', repo])).code).toBe(0);

  /** What each completed backup held, by snapshot id. */
  const backedUp = new Map<string, ManifestEntry[]>();
  let newest: string | null = null;
  /** What the killed backups were reading: one killed after writing its snapshot left a complete snapshot. */
  const killedBackups: string[] = [];
  const backupArgs = ['backup', '--repo', repo, '--server', 's1', '--tag', 'mail/imap', src, '--json'];
  const argsOf = (op: Op, target: string): string[] => {
    if (op === 'backup') return backupArgs;
    if (op === 'forget --prune') return ['forget', '--repo', repo, '--keep-last', '3', '--prune'];
    if (op === 'prune') return ['prune', '--repo', repo];
    return ['restore', 'latest', '--repo', repo, '--target', target];
  };
  const completeBackup = async () => {
    const r = await runCli(backupArgs);
    expect(r.code, r.stderr).toBe(0);
    const id = jsonLines(r.stdout).find((l) => l.type === 'summary')!.snapshot as string;
    backedUp.set(id, await manifest(src, { dirTimes: false }));
    newest = id;
  };
  // How long each operation takes here (machines differ, and a busy one is slower): kills land inside that span.
  const took = new Map<Op, number>();
  const timed = async (op: Op, work: () => Promise<unknown>) => {
    const t0 = Date.now();
    await work();
    took.set(op, Date.now() - t0);
  };
  await timed('backup', completeBackup);
  await timed('restore', () => runCli(argsOf('restore', join(d.path, 'warm-up'))));
  await timed('prune', () => runCli(argsOf('prune', '')));
  await timed('forget --prune', () => runCli(argsOf('forget --prune', '')));

  const tally = new Map<Op, { killed: number; finished: number }>(OPS.map((o) => [o, { killed: 0, finished: 0 }]));
  let kills = 0;
  while (kills < KILLS) {
    const op = OPS[Math.floor(rnd() * OPS.length)];
    if (op === 'backup') await mutate();
    const snapshotBefore = await manifest(src, { dirTimes: false });
    const target = join(d.path, `restore-${kills}`);
    const child = startCli(argsOf(op, target));
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', () => {});
    const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(signal === 'SIGKILL' ? -9 : code)));
    // Anywhere from the process's start to a little after its usual end.
    const t0 = Date.now();
    const delay = Math.floor(rnd() * 1.1 * took.get(op)!);
    const timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const code = await exited;
    clearTimeout(timer);
    const t = tally.get(op)!;
    if (code === -9) {
      t.killed++;
      kills++;
      if (op === 'backup') killedBackups.push(JSON.stringify(snapshotBefore));
    } else {
      expect(code, `${op} exited ${code}: ${out}`).toBe(0);
      t.finished++;
      took.set(op, Math.max(took.get(op)!, Date.now() - t0));
      if (op === 'backup') {
        const id = jsonLines(out).find((l) => l.type === 'summary')!.snapshot as string;
        backedUp.set(id, snapshotBefore);
        newest = id;
      }
    }
    await rm(target, { recursive: true, force: true });
  }

  // The repository after the last kill, as it is: no error (orphan packs of killed runs are only warnings).
  const checked = await runCli(['check', '--repo', repo, '--read-data', '--json']);
  expect(checked.code, checked.stdout + checked.stderr).toBe(0);
  const summary = jsonLines(checked.stdout).find((l) => l.type === 'summary')!;
  expect(summary.errors ?? [], checked.stdout).toEqual([]);

  // Every remaining snapshot restores exactly; the newest completed backup is among them (forget keeps 3).
  const listed = JSON.parse((await runCli(['snapshots', '--repo', repo, '--json'])).stdout) as { id: string }[];
  expect(listed.map((s) => s.id)).toContain(newest);
  let restored = 0;
  let lost = 0;
  for (const s of listed) {
    const want = backedUp.get(s.id);
    const target = join(d.path, `final-${s.id.slice(0, 8)}`);
    const r = await runCli(['restore', s.id, '--repo', repo, '--target', target]);
    const got = JSON.stringify(r.code === 0 ? await manifest(join(target, src), { dirTimes: false }) : null);
    const exact = want ? got === JSON.stringify(want) : killedBackups.includes(got);
    if (exact) restored++;
    else {
      lost++;
      console.error(`snapshot ${s.id}: restore exit ${r.code} ${r.stderr}; ${want ? 'differs from its backup' : 'matches no backup'}`);
    }
    await rm(target, { recursive: true, force: true });
  }
  console.log(
    `kill -9 reliability (seed ${SEED}): ${kills} kills (${OPS.map((o) => `${o} ${tally.get(o)!.killed} killed/${tally.get(o)!.finished} finished`).join(', ')}); ` +
      `check --read-data: ${(summary.errors as unknown[] | undefined)?.length ?? 0} errors; ${restored} of ${listed.length} remaining snapshots restore exactly; ${lost} lost`,
  );
  expect(lost).toBe(0);
}, 600_000);
