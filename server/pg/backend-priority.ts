// The PostgreSQL backends that serve a backup's own sessions (its dump, its snapshot reads) at the backup's own
// priority. A backend is a process of the database server, not of the backup: however low the backup runs, the
// work it asks of PostgreSQL (reading and sending every table) would otherwise compete at normal priority with
// the installation's own queries. Only where the database runs on this machine, best effort: a backend that
// cannot be reniced (another user's process without the privilege, another PID namespace) is left as it is and
// the backup goes on.

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import type pg from 'pg';
import { connect } from './client.js';
import type { ConnectionSettings } from './settings.js';

/** Which backends are the backup's. */
export interface BackupSessions {
  /** Backends of sessions held by the backup (`pg_backend_pid()` of its connections). */
  pids: number[];
  /**
   * The backend of a `pg_dump --snapshot` that imports the snapshot exported by that session: the only pg_dump
   * on the database whose transaction holds the same xmin.
   */
  dumpOf?: number;
}

export interface LoweredBackends {
  /** Backends set to the backup's priority. */
  lowered: number[];
  /** Why not every backend was lowered, for the part's notices. */
  note?: string;
}

/** Loopback or a Unix socket folder: the backends are processes of this machine (subject to the title check). */
export function isLocalHost(host: string): boolean {
  return host.startsWith('/') || host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Sets the backends of `sessions` to this process's nice value (and I/O class), once each, as they appear; the
 * dump's backend appears once pg_dump has connected, so they are looked for until all are found, `stop` is
 * aborted, or `withinMs` has passed. Never rejects.
 */
export async function lowerBackupBackends(
  s: ConnectionSettings,
  sessions: BackupSessions,
  o: { stop?: AbortSignal; withinMs?: number; nice?: number; proc?: string } = {},
): Promise<LoweredBackends> {
  const nice = o.nice ?? ownNice();
  // At normal priority there is nothing to lower; a remote server's processes are not ours to see.
  if (nice <= 0 || process.platform !== 'linux' || !isLocalHost(s.host)) return { lowered: [] };
  const want = sessions.pids.length + (sessions.dumpOf === undefined ? 0 : 1);
  const io = await ownIoClass();
  const lowered: number[] = [];
  const refused: string[] = [];
  const seen = new Set<number>();
  let c: pg.Client | undefined;
  try {
    c = await connect(s);
    await c.query(`SET application_name = 'bm-dataprotect backup priority'`);
    for (const end = Date.now() + (o.withinMs ?? 10_000); seen.size < want && Date.now() < end && !o.stop?.aborted; ) {
      await c.query('SELECT pg_stat_clear_snapshot()');
      const found = await c.query<{ pid: number; port: number | null }>(
        `SELECT a.pid, a.client_port AS port FROM pg_stat_activity a
          WHERE a.datname = current_database() AND (a.pid = ANY($1::int[])
             OR (a.application_name = 'pg_dump' AND a.backend_xmin = (SELECT o.backend_xmin FROM pg_stat_activity o WHERE o.pid = $2::int)))`,
        [sessions.pids, sessions.dumpOf ?? null],
      );
      for (const b of found.rows) {
        if (seen.has(b.pid)) continue;
        seen.add(b.pid);
        const why = await lowerOne(b.pid, b.port, s.database, nice, o.proc ?? '/proc');
        if (why) refused.push(`${b.pid}: ${why}`);
        else lowered.push(b.pid);
      }
      if (seen.size < want) await new Promise((r) => setTimeout(r, 100));
    }
    if (lowered.length && io) await new Promise<void>((r) => execFile('ionice', [...io, '-p', ...lowered.map(String)], () => r()));
  } catch (err) {
    refused.push((err as Error).message);
  } finally {
    await c?.end().catch(() => {});
  }
  const missing = want - seen.size;
  const note = [...refused, ...(missing > 0 ? [`${missing} backend(s) not found`] : [])].join('; ');
  return note ? { lowered, note } : { lowered };
}

/**
 * One backend at `nice`, if its process here is that backend: PostgreSQL's process title names the database and
 * the client's port (`postgres: 15/main: user db 127.0.0.1(54321) COPY`), which a process of the same number in
 * another PID namespace would not. Returns why not, or null.
 */
async function lowerOne(pid: number, port: number | null, database: string, nice: number, proc: string): Promise<string | null> {
  const title = (await readFile(`${proc}/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
  const client = port !== null && port > 0 ? `(${port})` : '[local]';
  if (!title.startsWith('postgres:') || !title.includes(` ${database} `) || !title.includes(client)) return 'not a backend of this machine';
  try {
    if (getPriority(pid) < nice) setPriority(pid, nice);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/** This thread's nice value (the main thread's, where the backup's work is asked for). */
function ownNice(): number {
  try {
    return getPriority();
  } catch {
    return 0;
  }
}

/** `ionice` options for this process's I/O class when it is lowered (idle, or best effort below the default), else null. */
async function ownIoClass(): Promise<string[] | null> {
  // ionice reads the class from the kernel; /proc does not show it. Without ionice the backends keep theirs.
  const out = await new Promise<string>((r) => execFile('ionice', ['-p', String(process.pid)], { timeout: 2000 }, (err, stdout) => r(err ? '' : stdout)));
  if (/^idle/.test(out)) return ['-c', '3'];
  const level = /^best-effort: prio (\d)/.exec(out)?.[1];
  return level !== undefined && Number(level) > 4 ? ['-c', '2', '-n', level] : null;
}
