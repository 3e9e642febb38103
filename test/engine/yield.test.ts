import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Archiver, type Repository } from '../../server/engine/index.js';
import { EventLoopTurn } from '../../server/engine/archiver.js';
import { newRepo, tempDir } from './helpers.js';

// A backup runs inside the server, on its event loop: the walk of a large tree must let the loop turn
// (timers, sockets, the API) every few hundred entries, never hold it for a whole directory. Counted in
// event-loop turns and entries, not in milliseconds, so that a busy machine changes nothing.

const FILES = 4000;
let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let src: string;

beforeEach(async () => {
  dir = await tempDir('dp-yield-');
  repo = await newRepo(dir.path);
  src = join(dir.path, 'spool');
  // One large directory (a busy maildir's cur/) and a few small ones beside it.
  await mkdir(join(src, 'big'), { recursive: true });
  for (let i = 0; i < FILES; i++) await writeFile(join(src, 'big', `m${i}`), `message ${i}\n`);
  for (let d = 0; d < 4; d++) {
    await mkdir(join(src, `small${d}`));
    for (let i = 0; i < 10; i++) await writeFile(join(src, `small${d}`, `m${i}`), `small ${d} ${i}\n`);
  }
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

/** Backs up the tree while a setImmediate ticker counts event-loop turns; records the turn at which each file was handled. */
async function backupCountingTurns(): Promise<{ turnsAtFiles: number[]; turns: number; files: number }> {
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const turnsAtFiles: number[] = [];
  const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap', progress: { file: () => turnsAtFiles.push(turns) } });
  const startTurns = turns;
  try {
    await a.addTree('/spool', src);
    const s = await a.commit();
    return { turnsAtFiles, turns: turns - startTurns, files: s.summary.filesNew + s.summary.filesUnmodified + s.summary.filesChanged };
  } finally {
    ticking = false;
  }
}

/** The most files handled within one event-loop turn. */
function longestRun(turnsAtFiles: number[]): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < turnsAtFiles.length; i++) {
    run = i > 0 && turnsAtFiles[i] === turnsAtFiles[i - 1] ? run + 1 : 1;
    longest = Math.max(longest, run);
  }
  return longest;
}

test('an unchanged re-run (stat only, no reads) gives the event loop a turn every few hundred entries', async () => {
  await backupCountingTurns();
  // The second run finds every file unchanged: nothing waits on a worker, so without yields the whole
  // 4,000-entry directory would be handled in one turn.
  const r = await backupCountingTurns();
  expect(r.files).toBe(FILES + 40);
  expect(r.turnsAtFiles).toHaveLength(FILES + 40);
  expect(longestRun(r.turnsAtFiles)).toBeLessThanOrEqual(2 * 256);
  expect(r.turns).toBeGreaterThanOrEqual(FILES / 512);
});

test('a first backup (reads on the codec workers) keeps the event loop turning too', async () => {
  const r = await backupCountingTurns();
  expect(r.files).toBe(FILES + 40);
  // Files are reported as the workers' answers land, 64 files an answer, and a turn takes every answer
  // that arrived meanwhile: how many depends on how the machine schedules the threads (on a busy one,
  // a third of the directory was seen), so the bound is only that the directory is never handled whole.
  expect(longestRun(r.turnsAtFiles)).toBeLessThan(FILES);
  expect(r.turns).toBeGreaterThanOrEqual(FILES / 512);
});

test('EventLoopTurn yields exactly once every N entries, and otherwise returns nothing to await', async () => {
  const t = new EventLoopTurn(3);
  const got = Array.from({ length: 7 }, () => t.entry() !== undefined);
  expect(got).toEqual([false, false, true, false, false, true, false]);
  let ran = false;
  setImmediate(() => (ran = true));
  const p = new EventLoopTurn(1).entry();
  expect(ran).toBe(false);
  await p;
  expect(ran).toBe(true);
});
