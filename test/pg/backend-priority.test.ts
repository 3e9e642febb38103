import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLocalHost, lowerBackupBackends } from '../../server/pg/backend-priority.js';
import { connect } from '../../server/pg/client.js';
import { createDatabase, dropDatabase } from '../../server/pg/databases.js';
import { parseDatabaseUrl, pgToolEnv, withDatabase } from '../../server/pg/settings.js';

// A backup's work in PostgreSQL (its sessions' backends, pg_dump's) runs at the backup's own priority where the
// database is on this machine; anything that is not surely that backend is left alone.

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const db = withDatabase(parseDatabaseUrl(PG_URL), `dp_test_bprio_${randomBytes(4).toString('hex')}`);
const sessions: pg.Client[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  await createDatabase(db);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of sessions) await c.end().catch(() => {});
  await dropDatabase(db).catch(() => {});
});

/** The nice value of a process (field 19 of /proc/PID/stat, after the command's parenthesis). */
async function niceOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Whether the kernel groups processes by session for the CPU. */
async function autogroups(): Promise<boolean> {
  return (await readFile('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').catch(() => '0')).trim() === '1';
}

async function session(): Promise<{ c: pg.Client; pid: number }> {
  const c = await connect(db);
  sessions.push(c);
  return { c, pid: (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid };
}

/** A client process of this machine on the database over TCP (psql, as pg_dump would be), busy for a while. */
function busyClient(): ChildProcess {
  const child = spawn('psql', ['-X', '-q', '-c', 'SELECT pg_sleep(30)'], { env: pgToolEnv(db), stdio: 'ignore' });
  children.push(child);
  return child;
}

// Renicing the server's processes takes root (or its own user), as on the machines the tests run on.
describe.runIf(process.platform === 'linux' && process.getuid?.() === 0)("PostgreSQL backends at the backup's priority", () => {
  it("sets the backup's sessions' backends and the backend of its pg_dump (found by its client port) to its nice value, once each", async () => {
    const a = await session();
    const b = await session();
    const other = await session();
    const client = busyClient();
    const r = await lowerBackupBackends(db, { pids: [a.pid, b.pid], clients: [client.pid!] }, { nice: 7 });
    expect(r.note).toBeUndefined();
    expect(r.lowered).toHaveLength(3);
    expect(r.lowered).toEqual(expect.arrayContaining([a.pid, b.pid]));
    const dumpBackend = r.lowered.find((p) => p !== a.pid && p !== b.pid)!;
    const { c } = await session();
    const app = (await c.query<{ a: string }>('SELECT application_name AS a FROM pg_stat_activity WHERE pid = $1', [dumpBackend])).rows[0].a;
    expect(app).toBe('psql');
    for (const pid of r.lowered) expect(await niceOf(pid)).toBe(7);
    // Another session of the same database and this process itself keep theirs.
    expect(await niceOf(other.pid)).toBe(0);
    expect(await niceOf(process.pid)).toBe(0);
    // Each backend is a session of its own (PostgreSQL's way): where the kernel groups by session, its group too.
    if (await autogroups()) {
      for (const pid of r.lowered) expect(await readFile(`/proc/${pid}/autogroup`, 'utf8')).toMatch(/ nice 7\n$/);
      expect(await readFile(`/proc/${other.pid}/autogroup`, 'utf8')).toMatch(/ nice 0\n$/);
    }
    client.kill('SIGKILL');
  });

  it('leaves a process alone when its title is not that backend of this database (another PID namespace); says so', async () => {
    const a = await session();
    const proc = await mkdtemp(path.join(tmpdir(), 'dp-bprio-'));
    try {
      await mkdir(path.join(proc, String(a.pid)));
      await writeFile(path.join(proc, String(a.pid), 'cmdline'), 'postgres: 15/main: postgres otherdb 127.0.0.1(5) idle\0');
      const r = await lowerBackupBackends(db, { pids: [a.pid] }, { nice: 9, proc });
      expect(r.lowered).toEqual([]);
      expect(r.note).toBe(`${a.pid}: not a backend of this machine`);
      expect(await niceOf(a.pid)).toBe(0);
      // The real title passes the same check.
      await writeFile(path.join(proc, String(a.pid), 'cmdline'), await readFile(`/proc/${a.pid}/cmdline`));
      expect((await lowerBackupBackends(db, { pids: [a.pid] }, { nice: 9, proc })).lowered).toEqual([a.pid]);
      expect(await niceOf(a.pid)).toBe(9);
    } finally {
      await rm(proc, { recursive: true, force: true });
    }
  });

  it("sets a backend's scheduling group only where the backend is its session's leader (else the group is others' too)", async () => {
    const a = await session();
    const proc = await mkdtemp(path.join(tmpdir(), 'dp-bprio-'));
    try {
      const dir = path.join(proc, String(a.pid));
      await mkdir(dir);
      await mkdir(path.join(proc, 'sys', 'kernel'), { recursive: true });
      await writeFile(path.join(proc, 'sys', 'kernel', 'sched_autogroup_enabled'), '1\n');
      await writeFile(path.join(dir, 'cmdline'), await readFile(`/proc/${a.pid}/cmdline`));
      const stat = await readFile(`/proc/${a.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const withSession = (sid: number) => `${stat.slice(0, stat.lastIndexOf(')') + 2)}${[...fields.slice(0, 3), String(sid), ...fields.slice(4)].join(' ')}`;
      await writeFile(path.join(dir, 'autogroup'), '/autogroup-1 nice 0\n');
      await writeFile(path.join(dir, 'stat'), withSession(1));
      expect((await lowerBackupBackends(db, { pids: [a.pid] }, { nice: 8, proc })).lowered).toEqual([a.pid]);
      expect(await readFile(path.join(dir, 'autogroup'), 'utf8')).toBe('/autogroup-1 nice 0\n');
      await writeFile(path.join(dir, 'stat'), withSession(a.pid));
      expect((await lowerBackupBackends(db, { pids: [a.pid] }, { nice: 8, proc })).lowered).toEqual([a.pid]);
      expect(await readFile(path.join(dir, 'autogroup'), 'utf8')).toBe('8');
    } finally {
      await rm(proc, { recursive: true, force: true });
    }
  });

  it('looks for a backend that never shows until it is stopped (the dump ended): then nothing is said missing', async () => {
    const stop = new AbortController();
    const looking = lowerBackupBackends(db, { pids: [2 ** 30] }, { nice: 10, withinMs: Infinity, stop: stop.signal });
    // A few rounds, then the end of the dump cuts the wait short.
    const { c } = await session();
    for (let i = 0; i < 50 && !(await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'bm-dataprotect backup priority'`)).rowCount; i++) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    expect(await looking).toEqual({ lowered: [] });
  });

  it('does nothing at normal priority or for a database on another machine (no connection is made); a missing backend is said', async () => {
    const nowhere = { ...db, host: '127.0.0.1', port: 1 };
    expect(await lowerBackupBackends(nowhere, { pids: [1] }, { nice: 0 })).toEqual({ lowered: [] });
    expect(await lowerBackupBackends({ ...db, host: '192.0.2.1' }, { pids: [1] }, { nice: 10 })).toEqual({ lowered: [] });
    expect((await lowerBackupBackends(nowhere, { pids: [1] }, { nice: 10 })).note).toMatch(/^connecting to .*ECONNREFUSED/);
    const r = await lowerBackupBackends(db, { pids: [2 ** 30] }, { nice: 10, withinMs: 300 });
    expect(r).toEqual({ lowered: [], note: '1 backend(s) not found' });
    expect([isLocalHost('127.0.0.1'), isLocalHost('localhost'), isLocalHost('::1'), isLocalHost('/var/run/postgresql')]).toEqual([true, true, true, true]);
    expect([isLocalHost('10.0.0.5'), isLocalHost('db.example.org'), isLocalHost('127.0.0.1.example.org')]).toEqual([false, false, false]);
  });
});
