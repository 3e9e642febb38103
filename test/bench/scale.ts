/**
 * The scale case: a spool of many small mail-like files (`--scale-files`, 200,000 by default: 1 to 8 KiB each, 100
 * per folder, 10 folders per user), backed up by our engine, restic and borg: a first backup, an unchanged re-run,
 * then a run after 1% new files (spread over every folder). What it shows: the cost per file of walking, stating
 * and looking up, which the mail case's 12,000 larger messages hide.
 */

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Prng } from '../../server/demo/prng.js';
import { vs, informative, type BenchRow } from './table.js';
import { BM_DATAPROTECT, diskBytes, measure, type Measure } from './tools.js';

const PER_FOLDER = 100;
const FOLDERS_PER_USER = 10;

export interface ScaleBenchOptions {
  workDir: string;
  files: number;
  log: (line: string) => void;
  /** Which of ours, restic, borg run (all by default). */
  peers?: string[];
}

export interface ScaleBench {
  files: number;
  mib: number;
  rows: BenchRow[];
}

/** Mail-like text to cut the files from: a vocabulary of made-up words, a line break now and then. */
function wordPool(rng: Prng): string {
  const letters = 'etaoinshrdlucmfwypvbgkjqxz';
  const words = Array.from({ length: 3000 }, () => Array.from({ length: 2 + rng.below(9) }, () => letters[Math.min(25, Math.floor(rng.next() ** 2 * 26))]).join(''));
  const out: string[] = [];
  let n = 0;
  while (n < 1 << 20) {
    const w = rng.pick(words) + (rng.below(14) === 0 ? '.\r\n' : ' ');
    out.push(w);
    n += w.length;
  }
  return out.join('');
}

function folderOf(i: number): string {
  const folder = Math.floor(i / PER_FOLDER);
  return join(`u${String(Math.floor(folder / FOLDERS_PER_USER)).padStart(4, '0')}`, `f${folder % FOLDERS_PER_USER}`);
}

/** Writes `count` files named `${prefix}${i}`: file i in folder i / 100, or spread over `folders` folders (new mail). */
async function writeFiles(spool: string, rng: Prng, pool: string, count: number, prefix: string, spreadOver?: number): Promise<number> {
  let bytes = 0;
  const made = new Set<string>();
  const batch: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(spool, folderOf(spreadOver ? (i % spreadOver) * PER_FOLDER : i));
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    const size = 1024 + rng.below(7 * 1024);
    const head = `Message-ID: <${prefix}${i}.${rng.below(1e9).toString(36)}@scale.example>\r\nFrom: u${rng.below(1000)}@scale.example\r\nSubject: ${pool.substr(rng.below(pool.length - 60), 40).replace(/\r\n/g, ' ')}\r\n\r\n`;
    const at = rng.below(pool.length - size);
    const data = (head + pool.slice(at, at + size)).slice(0, size);
    bytes += Buffer.byteLength(data);
    batch.push(writeFile(join(dir, `${prefix}${i}`), data));
    if (batch.length >= 256) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  return bytes;
}

interface Tool {
  name: string;
  repo: string;
  init(): Promise<unknown>;
  backup(run: number): Promise<Measure>;
}

export async function runScaleBench(o: ScaleBenchOptions): Promise<ScaleBench> {
  const work = resolve(o.workDir);
  await rm(work, { recursive: true, force: true });
  const spool = join(work, 'spool');
  await mkdir(spool, { recursive: true });
  const rng = new Prng(4242, 'xorshift32');
  const pool = wordPool(rng);
  o.log(`scale: writing ${o.files} small files in ${spool} ...`);
  const t = Date.now();
  const bytes = await writeFiles(spool, rng, pool, o.files, 'm');
  o.log(`scale: ${o.files} files, ${(bytes / 2 ** 20).toFixed(0)} MiB written in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  const env = { RESTIC_PASSWORD: 'bench-only', RESTIC_CACHE_DIR: join(work, 'restic-cache'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  const all: Tool[] = [
    {
      name: 'ours',
      repo: join(work, 'repo-ours'),
      init() {
        return measure(BM_DATAPROTECT, ['repo', 'init', '--repo', this.repo]);
      },
      backup() {
        return measure(BM_DATAPROTECT, ['backup', '--repo', this.repo, '--tag', 'mail/imap', '--server', 'bench', spool, '--json'], { env: { DP_CACHE_DIR: join(work, 'cache-ours') } });
      },
    },
    {
      name: 'restic',
      repo: join(work, 'repo-restic'),
      init() {
        return measure('restic', ['-r', this.repo, 'init', '-q'], { env });
      },
      backup() {
        return measure('restic', ['-r', this.repo, 'backup', '-q', '--compression', 'auto', '--host', 'bench', spool], { env });
      },
    },
    {
      name: 'borg',
      repo: join(work, 'repo-borg'),
      init() {
        return measure('borg', ['init', '-e', 'none', this.repo], { env });
      },
      backup(run) {
        return measure('borg', ['create', '--compression', 'lz4', `${this.repo}::run${run}`, 'spool'], { env, cwd: work });
      },
    },
  ];
  const tools = all.filter((t) => !o.peers || o.peers.includes(t.name));

  const label = `${o.files.toLocaleString('en-US')} files`;
  const first: BenchRow = { metric: `${label}: first backup`, unit: 's', values: {}, targets: [vs('restic', 1)] };
  const unchanged: BenchRow = { metric: `${label}: unchanged re-run`, unit: 's', values: {}, targets: [vs('restic', 1)] };
  const added: BenchRow = { metric: `${label}: run with 1% new files`, unit: 's', values: {}, targets: [vs('restic', 1)] };
  const memory: BenchRow = { metric: `${label}: peak memory (any run)`, unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] };
  const size: BenchRow = { metric: `${label}: repository size`, unit: 'MiB', values: {}, targets: [informative] };
  const run = async (row: BenchRow, n: number) => {
    for (const t of tools) {
      o.log(`scale: ${row.metric}: ${t.name} ...`);
      const m = await t.backup(n);
      row.values[t.name] = m.seconds;
      memory.values[t.name] = Math.max(memory.values[t.name] ?? 0, m.maxRssMiB);
    }
  };
  for (const t of tools) await t.init();
  await run(first, 0);
  await run(unchanged, 1);
  const folders = Math.ceil(o.files / PER_FOLDER);
  await writeFiles(spool, rng, pool, Math.round(o.files / 100), 'new', folders);
  await run(added, 2);
  for (const t of tools) size.values[t.name] = diskBytes(t.repo) / 2 ** 20;
  // Ours against itself: a run with 1% new files costs little more than an unchanged one.
  const againstUnchanged: BenchRow = {
    metric: `${label}: run with 1% new files (ref: the unchanged re-run)`, unit: 's', values: { ours: added.values.ours, ref: unchanged.values.ours }, targets: [vs('ref', 1.3)],
  };
  await rm(work, { recursive: true, force: true });
  return { files: o.files, mib: bytes / 2 ** 20, rows: [first, unchanged, added, againstUnchanged, memory, size] };
}
