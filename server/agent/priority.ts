// The backup process's place beside the services it protects: its CPU priority (a nice value, DP_BACKUP_NICE,
// the same setting as the engine's workers) and its I/O priority (DP_BACKUP_IO). Node has no call for an I/O
// class, so the process is started through util-linux's `ionice` (and coreutils' `nice`, so that every thread of
// it, libuv's and V8's included, starts niced) when they are on the PATH.

import { accessSync, constants } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { workerSettings } from '../engine/worker-settings.js';

export const IO_PRIORITY_ENV = 'DP_BACKUP_IO';

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
}

export class PriorityConfigError extends Error {}

const IO_VALUES: readonly IoPriority[] = ['low', 'idle', 'normal'];

/** The settings from the environment; a bad value is refused with what to give instead. */
export function processPriority(env: NodeJS.ProcessEnv = process.env): ProcessPriority {
  const raw = env[IO_PRIORITY_ENV]?.trim() || 'low';
  if (!IO_VALUES.includes(raw as IoPriority)) {
    throw new PriorityConfigError(`${IO_PRIORITY_ENV}=${raw} is not valid: give ${IO_VALUES.join(', ')}, or unset it for the default (low)`);
  }
  return { nice: workerSettings(env).nice, io: raw as IoPriority };
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
  return { command: argv[0], args: argv.slice(1), niced, io };
}

/**
 * The process's scheduling group at `nice`, where the kernel groups processes by session (autogroup, on by
 * default in Debian's and Ubuntu's kernels while the CPU cgroup controller is off): there a nice value only
 * weighs against the other processes of the same session, so a backup at nice 19 still gets as much CPU as the
 * whole mail server (Dovecot and PostgreSQL are sessions of their own). The process is started in a session of
 * its own (`detached`), and its group's weight is set here, by writing /proc/PID/autogroup (which its owner may
 * lower). Returns the group's nice value in force, or why not (`no autogroup`, the error).
 */
export async function lowerAutogroup(pid: number, nice: number, proc = '/proc'): Promise<string> {
  if (nice <= 0 || process.platform !== 'linux') return 'unchanged';
  const file = `${proc}/${pid}/autogroup`;
  const enabled = await readFile(`${proc}/sys/kernel/sched_autogroup_enabled`, 'utf8').catch(() => '0');
  if (enabled.trim() !== '1') return 'no autogroup';
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, String(nice));
      const now = /nice (-?\d+)/.exec(await readFile(file, 'utf8'))?.[1];
      return `autogroup nice ${now ?? '?'}`;
    } catch (err) {
      // The kernel takes one change every 100 ms from the whole machine (EAGAIN otherwise).
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' && attempt < 10) {
        await new Promise((r) => setTimeout(r, 120));
        continue;
      }
      return `autogroup unchanged (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
}
