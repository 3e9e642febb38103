import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One measured run: wall time, CPU time (user + system, every thread) and peak resident memory, from GNU time. */
/** Ours as an administrator runs it: the `bm-dataprotect` command (bin/), with the process settings it sets. */
export const BM_DATAPROTECT = fileURLToPath(new URL('../../../bin/bm-dataprotect', import.meta.url));

export interface Measure {
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
}

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs the peers from Debian when they are missing (the bench needs root for that, as CI has). */
export function ensureTools(log: (s: string) => void): void {
  const want: [string, string][] = [['restic', 'restic'], ['borg', 'borgbackup'], ['rsync', 'rsync'], ['/usr/bin/time', 'time']];
  const missing = want.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`the benchmark needs ${missing.join(', ')}: install them with 'apt-get install ${missing.join(' ')}'`);
  log(`installing ${missing.join(', ')} from Debian ...`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/**
 * Writes dirty pages out (not timed), so that no tool pays for the previous step's writeback: the spool
 * generator and each tool leave hundreds of MiB of dirty pages behind.
 */
export function settle(): void {
  execFileSync('sync');
}

/** Runs a command under /usr/bin/time; fails with its output when it exits non-zero. */
export async function measure(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Measure & { stdout: string }> {
  settle();
  const dir = await mkdtemp(join(tmpdir(), 'dp-bench-time-'));
  const out = join(dir, 'time');
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('/usr/bin/time', ['-o', out, '-f', '%e %M %U %S', cmd, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      child.stdout.on('data', (d) => (so += d));
      child.stderr.on('data', (d) => (se = (se + d).slice(-4000)));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c ?? -1, stdout: so, stderr: se }));
    });
    if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`);
    const [seconds, rssKiB, user, sys] = (await readFile(out, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
    return { seconds, cpuSeconds: user + sys, maxRssMiB: rssKiB / 1024, stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Bytes on disk of a directory tree, hard links counted once (what the backup really costs). */
export function diskBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

/** Number of regular files and their total size below a path. */
export function treeStats(path: string): { files: number; bytes: number } {
  const out = execFileSync('sh', ['-c', `find "${path}" -type f -printf '%s\\n'`], { maxBuffer: 256 * 1024 * 1024 }).toString().trim().split('\n').filter(Boolean);
  return { files: out.length, bytes: out.reduce((a, b) => a + Number(b), 0) };
}
