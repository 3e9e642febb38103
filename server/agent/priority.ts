// The backup process's place beside the services it protects: its CPU scheduling class (DP_BACKUP_CPU), its CPU
// priority (a nice value, DP_BACKUP_NICE, the same setting as the engine's workers) and its I/O priority
// (DP_BACKUP_IO). Node has no call for a scheduling or I/O class, so the process is started through util-linux's
// `ionice` and `chrt` (and coreutils' `nice`), so that every thread of it, libuv's and V8's and the codec workers
// included, and every process it starts (pg_dump), starts with them, when they are on the PATH.

import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { workerSettings } from '../engine/worker-settings.js';

export const IO_PRIORITY_ENV = 'DP_BACKUP_IO';
export const CPU_CLASS_ENV = 'DP_BACKUP_CPU';

/**
 * `nice` (the default): the nice value alone. `idle`: Linux's SCHED_IDLE class, which any process may take for
 * itself. A nice value only sets a share: a service's thread that wakes up on a core where a niced backup thread
 * runs may still wait for that thread's time slice to end, and the kernel places it on a core by load, not by who
 * runs there; a core running only SCHED_IDLE threads counts as free when a thread wakes up, and a waking thread of
 * another class takes it at once. A busy loop keeps its scheduling group's share (see lowerAutogroup); a process
 * that mostly waits and wakes, as a backup does, may do worse, preempted at every other wake-up and never
 * preempting. Not the default: on the busy machine it was measured on, service latency with and without it did
 * not differ beyond the noise, and its cost to the backup was not settled (README, Backup priority).
 */
export type CpuClass = 'idle' | 'nice';

/**
 * `low` (the default): best effort, its lowest level (7); `idle`: only when no one else uses the disk (a busy
 * disk can hold the backup back indefinitely); `normal`: as the server's. Under the `none` and `mq-deadline`
 * schedulers the kernel ignores I/O classes; BFQ honours them.
 */
export type IoPriority = 'idle' | 'low' | 'normal';

export interface ProcessPriority {
  /** 0 (normal) to 19 (lowest). */
  nice: number;
  io: IoPriority;
  /** Absent: `nice`. */
  cpu?: CpuClass;
}

export class PriorityConfigError extends Error {}

const IO_VALUES: readonly IoPriority[] = ['low', 'idle', 'normal'];
const CPU_VALUES: readonly CpuClass[] = ['nice', 'idle'];

/** The settings from the environment; a bad value is refused with what to give instead. */
export function processPriority(env: NodeJS.ProcessEnv = process.env): ProcessPriority {
  return { nice: workerSettings(env).nice, io: choice(env, IO_PRIORITY_ENV, IO_VALUES), cpu: choice(env, CPU_CLASS_ENV, CPU_VALUES) };
}

/** One of `values` (the first is the default). */
function choice<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[]): T {
  const raw = env[name]?.trim() || values[0];
  if (!values.includes(raw as T)) {
    throw new PriorityConfigError(`${name}=${raw} is not valid: give ${values.join(', ')}, or unset it for the default (${values[0]})`);
  }
  return raw as T;
}

/** Where an executable of that name is on the PATH, or null. */
export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return null;
}

export interface PrioritizedCommand {
  command: string;
  args: string[];
  /** Whether the nice value is in the command line; if not, the caller renices the process once started. */
  niced: boolean;
  /** The I/O class in force, as a phrase for the log (`best effort 7`, `idle`, or why not). */
  io: string;
  /** The CPU scheduling class asked for, as a phrase for the log (`idle`, `normal`, or why not). */
  cpu: string;
}

/** The command line that starts `command args` at priority `p`. */
export function prioritized(command: string, args: string[], p: ProcessPriority, find: (name: string) => string | null = onPath): PrioritizedCommand {
  let argv = [command, ...args];
  let niced = p.nice === 0;
  const nice = p.nice > 0 && process.platform === 'linux' ? find('nice') : null;
  if (nice) {
    argv = [nice, '-n', String(p.nice), ...argv];
    niced = true;
  }
  let cpu = 'normal';
  if (p.cpu === 'idle') {
    const chrt = process.platform === 'linux' ? find('chrt') : null;
    const sh = chrt ? find('sh') : null;
    if (chrt && sh) {
      // Set on the shell, then inherited through exec by every thread and child process; lowering one's own class
      // needs no privilege, and a kernel or sandbox that refuses it still runs the backup, in its normal class
      // (as ionice's -t does). Which class is in force is read afterwards (schedulingClass).
      argv = [sh, '-c', '"$1" --idle -p 0 $$ >/dev/null 2>&1; shift; exec "$@"', 'sh', chrt, ...argv];
      cpu = 'idle';
    } else {
      cpu = 'normal (no chrt on the PATH)';
    }
  }
  let io = 'normal';
  if (p.io !== 'normal') {
    const ionice = process.platform === 'linux' ? find('ionice') : null;
    if (ionice) {
      // -t: a kernel that refuses the class still runs the backup, at the normal I/O priority.
      argv = [ionice, '-t', ...(p.io === 'idle' ? ['-c', '3'] : ['-c', '2', '-n', '7']), ...argv];
      io = p.io === 'idle' ? 'idle' : 'best effort 7';
    } else {
      io = 'normal (no ionice on the PATH)';
    }
  }
  return { command: argv[0], args: argv.slice(1), niced, io, cpu };
}

/** A process's CPU scheduling class as the kernel has it (`/proc/PID/stat`), or null where there is none to read. */
export async function schedulingClass(pid: number, proc = '/proc'): Promise<string | null> {
  const stat = await readFile(`${proc}/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Fields after the command's closing parenthesis start at the third (state); the policy is the 41st.
  const policy = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
  return ({ 0: 'normal', 1: 'fifo', 2: 'round robin', 3: 'batch', 5: 'idle', 6: 'deadline' } as Record<number, string>)[policy] ?? `policy ${policy}`;
}
