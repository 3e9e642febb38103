// Creating and dropping whole databases: done from a maintenance connection on the same server.

import { withClient } from './client.js';
import { quoteIdent } from './ident.js';
import { redactUrl } from './redact.js';
import { settingsOf, type DatabaseTarget } from './settings.js';

/** The maintenance database to connect to while working on `name` (one cannot drop the database one is in). */
function maintenanceDatabase(name: string): string {
  return name === 'postgres' ? 'template1' : 'postgres';
}

/** `name`, or the database the target names. */
function databaseName(target: DatabaseTarget, name?: string): string {
  const n = name ?? settingsOf(target).database;
  if (!n) throw new Error(typeof target === 'string' ? `database URL ${redactUrl(target)} names no database` : 'no database named');
  return n;
}

export async function databaseExists(target: DatabaseTarget, name?: string): Promise<boolean> {
  const db = databaseName(target, name);
  return withClient(target, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount! > 0, maintenanceDatabase(db));
}

export interface CreateDatabaseOptions {
  /**
   * In UTF-8 (default), as a BlueMind database or a restore target needs; false keeps the cluster's default encoding,
   * which fits the plugin's own tables on any cluster locale. Always a copy of `template0`: copying `template1` fails
   * while any other session is connected to it.
   */
  utf8?: boolean;
}

export async function createDatabase(target: DatabaseTarget, name?: string, opts: CreateDatabaseOptions = {}): Promise<void> {
  const db = databaseName(target, name);
  const template = opts.utf8 === false ? ' TEMPLATE template0' : ` TEMPLATE template0 ENCODING 'UTF8'`;
  await withClient(target, (c) => c.query(`CREATE DATABASE ${quoteIdent(db)}${template}`), maintenanceDatabase(db));
}

/** Creates the database the target names when it does not exist yet (the plugin's own database at start). */
export async function ensureDatabase(target: DatabaseTarget): Promise<void> {
  const db = databaseName(target);
  if (await databaseExists(target, db)) return;
  try {
    await createDatabase(target, db, { utf8: false });
  } catch (err) {
    // Another process created it in between.
    if ((err as { code?: string }).code !== '42P04') throw err;
  }
}

/**
 * Drops a database (by default the one the target names), ending its sessions first as BlueMind's dropdb.sh does.
 * DROP DATABASE waits for every backend of the cluster to acknowledge a barrier, so one stuck backend anywhere
 * (a COPY nobody reads) blocks it: after `timeoutMs` it gives up with an error.
 */
export async function dropDatabase(target: DatabaseTarget, name?: string, timeoutMs = 15_000): Promise<void> {
  const db = databaseName(target, name);
  await withClient(
    target,
    async (c) => {
      await c.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
      // FORCE (PostgreSQL 13+) also ends a session that connected after the line above.
      const version = Number((await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)}${version >= 130000 ? ' WITH (FORCE)' : ''}`);
    },
    maintenanceDatabase(db),
  );
}
