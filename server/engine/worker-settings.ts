import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { EngineError } from './errors.js';

/**
 * How the engine's codec workers (reading, hashing, compressing: the CPU of a backup) share the machine
 * with the services it backs up: their CPU priority and how many run at once.
 *
 * DP_BACKUP_NICE: the workers' nice value, 0 (normal) to 19 (lowest); default 10. On Linux each worker
 * thread renices itself (a nice value is per thread there), so the server's own thread, which answers the
 * API, keeps its priority; the kernel's I/O schedulers (BFQ) derive a thread's I/O priority from its nice
 * value when none is set. Elsewhere a nice value is per process and is left alone.
 * DP_BACKUP_WORKERS: how many workers, 1 to 64; default all cores but one where there are 4 or more
 * (one stays for the services), else every core; at most 8 by default (each holds a few MiB).
 */
export interface WorkerSettings {
  nice: number;
  workers: number;
}

export const DEFAULT_BACKUP_NICE = 10;
const MAX_DEFAULT_WORKERS = 8;
const MAX_WORKERS = 64;

export function defaultWorkers(cores: number): number {
  const n = cores >= 4 ? cores - 1 : cores;
  return Math.max(1, Math.min(n, MAX_DEFAULT_WORKERS));
}

/** The settings from the environment; a value that is not a whole number in range is refused, with what to give instead. */
export function workerSettings(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): WorkerSettings {
  return {
    nice: whole(env, 'DP_BACKUP_NICE', 0, 19, DEFAULT_BACKUP_NICE, 'from 0 (normal priority) to 19 (lowest)'),
    workers: whole(env, 'DP_BACKUP_WORKERS', 1, MAX_WORKERS, defaultWorkers(cores), `from 1 to ${MAX_WORKERS}`),
  };
}

/**
 * The environment of a process that runs codec workers (the plugin's backup process), for what must be set
 * before it starts: glibc's malloc arenas (MALLOC_ARENA_MAX=2; bin/bm-dataprotect says why), unless set.
 */
export function workerProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '2', ...env };
}

function whole(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number, range: string): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new EngineError(`${name}=${raw} is not valid: give a whole number ${range}, or unset it for the default (${fallback})`);
  return n;
}

/**
 * A process's scheduling group at `nice`, where the kernel groups processes by session (autogroup, on by default
 * in Debian's and Ubuntu's kernels while the CPU cgroup controller is off): there a nice value only weighs against
 * the other processes of the same session, so a backup at nice 19 still gets as much CPU as the whole mail server
 * (Dovecot is a session of its own, and so is each PostgreSQL backend). The group's weight is set by writing
 * /proc/PID/autogroup (which the process's owner may lower); it is the whole session's, so the caller makes sure
 * the session is the backup's own. Only lowers: a group already at `nice` or a higher one is left as it is. Returns the
 * group's nice value in force, or why not (`no autogroup`, the error).
 */
export async function lowerAutogroup(pid: number, nice: number, proc = '/proc'): Promise<string> {
  if (nice <= 0 || process.platform !== 'linux') return 'unchanged';
  const file = `${proc}/${pid}/autogroup`;
  const enabled = await readFile(`${proc}/sys/kernel/sched_autogroup_enabled`, 'utf8').catch(() => '0');
  if (enabled.trim() !== '1') return 'no autogroup';
  const current = async () => /nice (-?\d+)/.exec(await readFile(file, 'utf8'))?.[1];
  for (let attempt = 0; ; attempt++) {
    try {
      const was = await current();
      if (was !== undefined && Number(was) >= nice) return `autogroup nice ${was}`;
      await writeFile(file, String(nice));
      return `autogroup nice ${(await current()) ?? '?'}`;
    } catch (err) {
      // Without CAP_SYS_ADMIN the kernel takes one change every 100 ms from the whole machine (EAGAIN otherwise).
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' && attempt < 10) {
        await new Promise((r) => setTimeout(r, 120));
        continue;
      }
      return `autogroup unchanged (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
}
