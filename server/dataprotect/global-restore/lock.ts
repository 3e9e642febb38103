// One global restore at a time per installation, whichever process runs it (two CLIs, the CLI and the plugin):
// a PostgreSQL session advisory lock, held on the server's maintenance database (the installation's own
// databases are dropped and recreated under it), released by the server when the holder dies, even by kill -9.
// The holder also leaves a note in the state directory so that the refusal names the run that holds it.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { connect } from '../../pg/client.js';
import type { InstallationPort } from '../../host/installation.js';

export const HOLDER_FILE = 'running.json';
const LOCK_CLASS = 0x6470;
const MAINTENANCE_DATABASE = 'postgres';

export interface LockHolder {
  pid: number;
  host: string;
  generation: string;
  startedAt: string;
}

/** Another global restore holds the installation. */
export class GlobalRestoreBusyError extends Error {
  constructor(readonly holder: LockHolder | null, detail: string) {
    super(
      'another global restore is running on this installation' +
        (holder ? ` (generation ${holder.generation}, process ${holder.pid} on ${holder.host}, started ${holder.startedAt})` : detail ? ` (${detail})` : '') +
        ': wait for it to finish, or stop it and run again to resume',
    );
  }
}

export interface InstallationLock {
  release(): Promise<void>;
}

/** The lock's name: the installation's databases, which no two installations on one PostgreSQL server share. */
async function lockName(inst: InstallationPort): Promise<{ name: string; databases: string[]; client: pg.Client } | null> {
  const dbs = await inst.host.databases();
  if (!dbs.length) return null;
  const databases = dbs.map((d) => d.connection.database).sort();
  return { name: 'global-restore ' + databases.join(','), databases, client: await connect(dbs[0].connection, MAINTENANCE_DATABASE) };
}

/** How long the holder waits for what a killed run left running in the server; generous, a copy of a database is slow. */
export const LEFTOVER_WAIT_MS = 300_000;

/**
 * A run killed during CREATE or DROP DATABASE leaves it running in the server (a backend notices its client is
 * gone only when it next talks to it), and it releases the lock at once. The next holder waits for it to end:
 * otherwise its own DROP misses the database still being created, and its CREATE then fails on the name.
 */
async function awaitLeftovers(client: pg.Client, databases: string[], waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await client.query<{ pid: number; query: string }>(
      `SELECT pid, left(query, 200) AS query FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND state = 'active' AND query ~* '^\\s*(CREATE|DROP)\\s+DATABASE'
          AND EXISTS (SELECT 1 FROM unnest($1::text[]) d WHERE position(quote_ident(d) IN query) > 0)`,
      [databases],
    );
    if (!r.rows.length) return;
    if (Date.now() > deadline) {
      const s = r.rows[0];
      throw new Error(
        `an earlier run's "${s.query.trim()}" (PostgreSQL session ${s.pid}) is still running after ${Math.round(waitMs / 1000)} s: ` +
          `wait for it to end (or end it with SELECT pg_terminate_backend(${s.pid})), then run again to resume`,
      );
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

export async function lockInstallation(inst: InstallationPort, generation: string, opts: { leftoverWaitMs?: number } = {}): Promise<InstallationLock> {
  const l = await lockName(inst);
  // An installation without a database has nothing a PostgreSQL lock could name: the state directory is all.
  if (!l) return { release: async () => {} };
  const { name, databases, client } = l;
  const note = path.join(inst.stateDir, HOLDER_FILE);
  try {
    await client.query(`SET application_name = 'bm-dataprotect global-restore'`);
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, name]);
    if (!r.rows[0].ok) throw new GlobalRestoreBusyError(await readHolder(note), await holderSession(client, name));
    await awaitLeftovers(client, databases, opts.leftoverWaitMs ?? LEFTOVER_WAIT_MS);
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
  const me: LockHolder = { pid: process.pid, host: os.hostname(), generation, startedAt: new Date().toISOString() };
  await fs.mkdir(inst.stateDir, { recursive: true, mode: 0o700 });
  await fs.writeFile(note, JSON.stringify(me) + '\n', { mode: 0o600 });
  return {
    async release() {
      await fs.rm(note, { force: true }).catch(() => {});
      await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, name]).catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

async function readHolder(file: string): Promise<LockHolder | null> {
  try {
    const h = JSON.parse(await fs.readFile(file, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' && typeof h.generation === 'string' ? h : null;
  } catch {
    return null;
  }
}

/** The session that holds the lock, as PostgreSQL sees it (when the note is missing). */
async function holderSession(client: pg.Client, name: string): Promise<string> {
  const r = await client
    .query<{ who: string }>(
      `SELECT format('PostgreSQL session %s from %s since %s', a.pid, coalesce(a.client_addr::text, 'local'), a.backend_start) AS who
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid::bigint = (hashtext($2)::bigint + 4294967296) % 4294967296 AND l.objsubid = 2`,
      [LOCK_CLASS, name],
    )
    .catch(() => ({ rows: [] as { who: string }[] }));
  return r.rows[0]?.who ?? '';
}
