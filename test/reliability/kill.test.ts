import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { bytesOf, manifest, tempDir, type ManifestEntry } from '../engine/helpers.js';
import { jsonLines, killAt, runCli, startCli } from '../engine/cli-helpers.js';
import { everyMailbox, globalFixture, recordFiles, recordTables, type GlobalFixture } from '../global-restore/helpers.js';

// kill -9 at random points of backup, forget --prune, prune, restore and global restore, with the real command
// line; then nothing is lost: `check --read-data` finds no error and every remaining snapshot restores exactly
// what was backed up, and a global restore run again after its kill gives back every table, file and message.
// DP_RELIABILITY_KILLS sets how many kills in all, shared equally by the five operations (10 by default, for CI;
// 100 for the figures in the README: 20 each). DP_RELIABILITY_SEED replays a run.

const KILLS = Number(process.env.DP_RELIABILITY_KILLS ?? 10);
const PER_OP = Math.max(1, Math.round(KILLS / 5));
const SEED = Number(process.env.DP_RELIABILITY_SEED ?? Date.now() % 1_000_000);
const dirs: { cleanup: () => Promise<void> }[] = [];
let gr: GlobalFixture | undefined;
afterAll(async () => {
  for (const d of dirs) await d.cleanup();
  await gr?.close();
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

it(`kill -9 at ${PER_OP * 4} random points across backup, forget --prune, prune and restore loses nothing`, async () => {
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
  const started = Date.now();
  while (kills < PER_OP * OPS.length) {
    // Random order, the same number of kills for each operation.
    const open = OPS.filter((o) => tally.get(o)!.killed < PER_OP);
    const op = open[Math.floor(rnd() * open.length)];
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
    `kill -9 reliability (seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(0)} s): ${kills} kills (${OPS.map((o) => `${o} ${tally.get(o)!.killed} killed/${tally.get(o)!.finished} finished`).join(', ')}); ` +
      `check --read-data: ${(summary.errors as unknown[] | undefined)?.length ?? 0} errors; ${restored} of ${listed.length} remaining snapshots restore exactly; ${lost} lost`,
  );
  expect(lost).toBe(0);
}, 600_000);

it(`kill -9 at ${PER_OP} random points of a global restore, then run again: the installation is exact each time`, async () => {
  const rnd = random(SEED + 1);
  gr = await globalFixture('kill', 4);
  const f = gr;
  const run = (wipe: boolean) => ['global-restore', 'run', '--repo', f.repoDir, '--host-root', f.sb.root, f.generation, '--yes', '--json', ...(wipe ? ['--wipe'] : [])];
  const summaryOf = (lines: Record<string, unknown>[]) => lines.find((l) => l.type === 'summary') as { alreadyRestored: boolean; resumed: boolean; parts: { key: string; state: string }[] } | undefined;
  /** Every table row for row, every file with its mode, owner and times, every message over IMAP. */
  const exact = async (): Promise<string | null> => {
    if (JSON.stringify(await recordTables(f.sb.db)) !== JSON.stringify(f.tables)) return 'tables differ';
    if (JSON.stringify(await recordFiles(f.host.layout)) !== JSON.stringify(f.files)) return 'files differ';
    const imap = await everyMailbox(f.host.layout);
    for (const [login, folders] of f.imap) if (JSON.stringify(imap.get(login)) !== JSON.stringify(folders)) return `mailbox ${login} differs over IMAP`;
    return null;
  };
  /** Run again without --wipe: it resumes (or has nothing to do) and ends with the exact installation. */
  const rerun = async (why: string) => {
    const r = await runCli(run(false), { env: f.env });
    expect(r.code, `${why}: ${r.stdout}${r.stderr}`).toBe(0);
    const s = summaryOf(jsonLines(r.stdout))!;
    expect(await exact(), why).toBeNull();
    return s;
  };

  // The span of a run's work, from its wipe (lock taken, installation checked) to its exit: kills land in it.
  const WIPING = /^wiping the installation/;
  const wipeAt = (l: Record<string, unknown>) => WIPING.test(String(l.message));
  let took = 0;
  const first = lineStream(startCli(run(true), { env: f.env }));
  {
    expect(await first.until(wipeAt), first.text()).toBe(true);
    const t0 = Date.now();
    expect(await first.exited, first.text()).toBe(0);
    took = Date.now() - t0;
    expect(await exact()).toBeNull();
  }

  let killed = 0;
  let finished = 0;
  let resumed = 0;
  let nothingToDo = 0;
  const started = Date.now();
  const killedAfter: string[] = [];
  while (killed < PER_OP) {
    const child = startCli(run(true), { env: f.env });
    const lines = lineStream(child);
    expect(await lines.until(wipeAt), lines.text()).toBe(true);
    const t0 = Date.now();
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.floor(rnd() * 1.1 * took));
    const code = await lines.exited;
    clearTimeout(timer);
    if (code === -9) {
      killed++;
      const last = lines.all().filter((l) => l.type === 'part').at(-1);
      killedAfter.push(last ? `${String(last.part)} ${String(last.state)}` : 'wipe');
      const s = await rerun(`run again after a kill ${Date.now() - t0} ms into the work (${killedAfter.at(-1)})`);
      if (s.alreadyRestored) nothingToDo++;
      else resumed++;
    } else {
      expect(code, lines.text()).toBe(0);
      finished++;
      took = Math.max(took, Date.now() - t0);
      // Run again once it has finished: it says so, and does nothing.
      const s = await rerun('run again after a finished run');
      expect(s.alreadyRestored).toBe(true);
    }
  }

  // Killed just as it ended: after its last part, and after it recorded the end but before it said so. The kill
  // lands some time after the line that triggers it: after the last part's line the run may have recorded its
  // end meanwhile (on a fast machine it often has), so either answer is right there, each checked for what it says.
  const parts = summaryOf(first.all())!.parts.map((p) => p.key);
  const atEnd: [string, (l: Record<string, unknown>) => boolean, 'resumed or already' | 'already'][] = [
    ['after its last part', (l) => l.type === 'part' && l.part === parts.at(-1) && l.state === 'done', 'resumed or already'],
    ['after recording its end', (l) => l.type === 'notice' && /^generation .* restored in/.test(String(l.message)), 'already'],
  ];
  for (const [when, point, want] of atEnd) {
    const k = await killAt(run(true), point, { env: f.env });
    expect(k.killed, `the run reached the point ${when}`).toBe(true);
    const s = await rerun(`run again after a kill ${when}`);
    if (want === 'already') expect(s.alreadyRestored, when).toBe(true);
    expect(s.parts.map((p) => p.state), when).toEqual(parts.map(() => 'already restored'));
    // Not recorded as restored: then it resumed the interrupted run.
    if (!s.alreadyRestored) expect(s.resumed, when).toBe(true);
    if (s.alreadyRestored) nothingToDo++;
    else resumed++;
  }
  console.log(
    `kill -9 reliability, global restore (seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(0)} s): ${killed} killed/${finished} finished; ` +
      `${killed + 2} runs again after a kill: ${resumed} resumed, ${nothingToDo} had nothing to do, ${killed + 2} of ${killed + 2} exact (tables, files, messages); ` +
      `killed after: ${killedAfter.join(', ')}`,
  );
}, 1_200_000);

/** A running command's JSON lines as they come, and its exit (-9 when killed). */
function lineStream(child: ReturnType<typeof startCli>) {
  const got: Record<string, unknown>[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) got.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(signal === 'SIGKILL' ? -9 : code)));
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    exited,
    all: () => got,
    text: () => got.map((l) => JSON.stringify(l)).join('\n'),
    /** True once a line `point` accepts has come; false when the process ended first. */
    async until(point: (l: Record<string, unknown>) => boolean): Promise<boolean> {
      for (;;) {
        if (got.some(point)) return true;
        if (ended) return false;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}
