// Small database helpers for the reference host: connect, create/drop databases, bulk insert.

import pg from 'pg';
import { type ConnectionSettings, describe, ident, pgConfig, redact, withDatabase } from './connection.js';

export async function connect(s: ConnectionSettings): Promise<pg.Client> {
  const client = new pg.Client(pgConfig(s));
  // Without a listener an idle-connection error would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw new Error(`connecting to ${describe(s)}: ${redact((e as Error).message, s)}`);
  }
  return client;
}

export async function withClient<T>(s: ConnectionSettings, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(s);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Maintenance connection (database `postgres`) on the same server. */
function admin(s: ConnectionSettings): ConnectionSettings {
  return withDatabase(s, s.database === 'postgres' ? 'template1' : 'postgres');
}

export async function databaseExists(s: ConnectionSettings, name: string): Promise<boolean> {
  return withClient(admin(s), async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount! > 0);
}

export async function createDatabase(s: ConnectionSettings, name: string): Promise<void> {
  await withClient(admin(s), async (c) => {
    await c.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0 ENCODING 'UTF8'`);
  });
}

/** Drops a database, ending its sessions first (as BlueMind's dropdb.sh). */
export async function dropDatabase(s: ConnectionSettings, name: string): Promise<void> {
  await withClient(admin(s), async (c) => {
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await c.query(`DROP DATABASE IF EXISTS ${ident(name)}`);
  });
}

/**
 * Inserts rows (objects keyed by column) through json_populate_recordset: one round trip per batch, and
 * PostgreSQL converts JSON arrays and strings into the columns' types.
 */
export async function insertRows(c: pg.ClientBase, table: string, rows: Record<string, unknown>[], batch = 4000): Promise<void> {
  // Rows are grouped by their set of keys: a column a row leaves out keeps its DEFAULT instead of becoming NULL.
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) {
    const key = Object.keys(r).join(',');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  for (const [key, group] of groups) {
    const list = key.split(',').map(ident).join(', ');
    const sql = `INSERT INTO ${ident(table)} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::${ident(table)}, $1::json)`;
    for (let i = 0; i < group.length; i += batch) {
      await c.query(sql, [JSON.stringify(group.slice(i, i + batch))]);
    }
  }
}
