// The PostgreSQL backends that serve a backup's own sessions (its dump, its snapshot reads) at the backup's own
// priority. A backend is a process of the database server, not of the backup: however low the backup runs, the
// work it asks of PostgreSQL (reading and sending every table) would otherwise compete at normal priority with
// the installation's own queries. Only where the database runs on this machine, best effort: a backend that
// cannot be reniced (another user's process without the privilege, another PID namespace) is left as it is and
// the backup goes on.

import { execFile } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { lowerAutogroup } from '../engine/process-settings.js';
import { connect } from './client.js';
import type { ConnectionSettings } from './settings.js';

/** Which backends are the backup's. */
export interface BackupSessions {
  /** Backends of sessions held by the backup (`pg_backend_pid()` of its connections). */
  pids: number[];
  /**
   * Processes of this machine connected to the database (pg_dump): their backends are those whose client port is
   * one of theirs (over TCP; a client on a Unix socket is not found).
   */
  clients?: number[];
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

/** Rounds looked for at most four times a second (about a minute), before once every 5 s. */
const LOOKS_OFTEN = 240;

/**
 * Sets the backends of `sessions` to this process's nice value (and I/O class, and scheduling group: see
 * lowerOne), once each, as they appear; the dump's backend appears once pg_dump has connected, so they are looked
 * for until all are found, `stop` is aborted, or `withinMs` has passed. Never rejects.
 */
export async function lowerBackupBackends(
  s: ConnectionSettings,
  sessions: BackupSessions,
  o: { stop?: AbortSignal; withinMs?: number; nice?: number; proc?: string } = {},
): Promise<LoweredBackends> {
  const nice = o.nice ?? ownNice();
  // At normal priority there is nothing to lower; a remote server's processes are not ours to see.
  if (nice <= 0 || process.platform !== 'linux' || !isLocalHost(s.host)) return { lowered: [] };
  const want = sessions.pids.length + (sessions.clients?.length ?? 0);
  const proc = o.proc ?? '/proc';
  const io = ownIoClass();
  const lowered: number[] = [];
  const refused: string[] = [];
  const seen = new Set<number>();
  let c: pg.Client | undefined;
  try {
    c = await connect(s);
    await c.query(`SET application_name = 'bm-dataprotect backup priority'`);
    for (let round = 1, end = Date.now() + (o.withinMs ?? 10_000); seen.size < want && Date.now() < end && !o.stop?.aborted; round++) {
      const ports = (await Promise.all((sessions.clients ?? []).map((pid) => tcpPorts(pid, proc)))).flat();
      await c.query('SELECT pg_stat_clear_snapshot()');
      const found = await c.query<{ pid: number; port: number | null }>(
        `SELECT pid, client_port AS port FROM pg_stat_activity
          WHERE datname = current_database()
            AND (pid = ANY($1::int[]) OR (client_port = ANY($2::int[]) AND (client_addr <<= '127.0.0.0/8' OR client_addr = '::1')))`,
        [sessions.pids, ports],
      );
      for (const b of found.rows) {
        if (seen.has(b.pid)) continue;
        seen.add(b.pid);
        const one = await lowerOne(b.pid, b.port, s.database, nice, proc);
        if (one.refused) refused.push(`${b.pid}: ${one.refused}`);
        else lowered.push(b.pid);
        if (one.note) refused.push(`${b.pid}: ${one.note}`);
      }
      // Looked for often at first, then four times a second: a dump that connects late may be short, and one
      // round is a query and a few small reads. After a minute, every 5 s: a backend that never shows (a client
      // on a Unix socket has no port to match) is not looked for four times a second for the whole dump.
      // (Cut short when the dump ends: the part waits for this.)
      if (seen.size < want) await sleep(round > LOOKS_OFTEN ? 5000 : Math.min(250, 100 * round), undefined, { signal: o.stop }).catch(() => {});
    }
    const ioClass = await io;
    if (lowered.length && ioClass) await new Promise<void>((r) => execFile('ionice', [...ioClass, '-p', ...lowered.map(String)], () => r()));
  } catch (err) {
    refused.push((err as Error).message);
  } finally {
    await c?.end().catch(() => {});
  }
  // Stopped early (the dump ended first: a small database), a backend not seen has nothing left to slow.
  const missing = o.stop?.aborted ? 0 : want - seen.size;
  const note = [...refused, ...(missing > 0 ? [`${missing} backend(s) not found`] : [])].join('; ');
  return note ? { lowered, note } : { lowered };
}

/**
 * One backend at `nice` (its scheduling group too), if its process here is that backend: PostgreSQL's process
 * title names the database and the client's port (`postgres: 15/main: user db 127.0.0.1(54321) COPY`), which a
 * process of the same number in another PID namespace would not. Returns why not (`refused`) or what was not
 * done (`note`).
 */
async function lowerOne(pid: number, port: number | null, database: string, nice: number, proc: string): Promise<{ refused?: string; note?: string }> {
  const title = (await readFile(`${proc}/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
  const client = port !== null && port > 0 ? `(${port})` : '[local]';
  if (!title.startsWith('postgres:') || !title.includes(` ${database} `) || !title.includes(client)) return { refused: 'not a backend of this machine' };
  try {
    if (getPriority(pid) < nice) setPriority(pid, nice);
  } catch (err) {
    return { refused: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  // PostgreSQL starts each backend in a session of its own: where the kernel groups processes by session, its
  // nice value alone weighs against nothing, and the group's does. A backend that shares its session (another
  // server's way) is left at its nice value: the group would be the whole database server's.
  if ((await sessionOf(pid, proc)) !== pid) return {};
  const group = await lowerAutogroup(pid, nice, proc);
  return group.startsWith('autogroup unchanged') ? { note: group } : {};
}

/** A process's session id (field 6 of /proc/PID/stat), or null. */
async function sessionOf(pid: number, proc: string): Promise<number | null> {
  const stat = await readFile(`${proc}/${pid}/stat`, 'utf8').catch(() => null);
  return stat === null ? null : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

/** The local ports of a process's TCP sockets (its descriptors' socket inodes, looked up in its /proc/PID/net/tcp and tcp6). */
async function tcpPorts(pid: number, proc: string): Promise<number[]> {
  const inodes = new Set<string>();
  const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]);
  }
  if (!inodes.size) return [];
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`${proc}/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9])) ports.push(parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
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
