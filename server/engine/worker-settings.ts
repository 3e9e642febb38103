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

function whole(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number, range: string): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new EngineError(`${name}=${raw} is not valid: give a whole number ${range}, or unset it for the default (${fallback})`);
  return n;
}
