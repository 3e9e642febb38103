// What a process that runs the engine's codec workers is set up with from outside the engine's threads: its
// environment before it starts, and its scheduling group (the per-thread settings are worker-settings.ts's).

import { readFile, writeFile } from 'node:fs/promises';

/**
 * The environment of a process that runs codec workers (the plugin's backup process), for what must be set
 * before it starts: glibc's malloc arenas (MALLOC_ARENA_MAX=2; bin/bm-dataprotect says why), unless set.
 */
export function workerProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '2', ...env };
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
