// Connections: one client for a piece of work, or a pool for the plugin's own tables.

import pg from 'pg';
import { redactPassword } from './redact.js';
import { clientConfig, describe, settingsOf, type DatabaseTarget } from './settings.js';

export type Pool = pg.Pool;

/** A pool on a database. Timestamps come back as Date, bigints as strings (converted by the stores). */
export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/** A connected client on the target (or on another `database` of its server); failures say where, without the password. */
export async function connect(target: DatabaseTarget, database?: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(target, database));
  // Without a listener an idle-connection error would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    const s = settingsOf(target);
    throw new Error(`connecting to ${describe(database === undefined ? s : { ...s, database })}: ${redactPassword((e as Error).message, s)}`);
  }
  return client;
}

export async function withClient<T>(target: DatabaseTarget, fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const c = await connect(target, database);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}
