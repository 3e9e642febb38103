import pg from 'pg';
import { pgConfig, type ConnectionSettings } from '../../host/connection.js';

// The same advisory lock as ClusterCoordinator.withLock(BACKUP_LOCK) (class 0x6470, hashtext(name)), for a
// process without the plugin (the CLI): a CLI run and the plugin's runs exclude each other on one database.

const LOCK_CLASS = 0x6470;

export type Locked<T> = { acquired: true; value: T } | { acquired: false };

export async function withDatabaseLock<T>(db: ConnectionSettings, name: string, work: () => Promise<T>): Promise<Locked<T>> {
  const client = new pg.Client(pgConfig(db));
  client.on('error', () => {});
  await client.connect();
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, name])).rows[0].ok;
    if (!locked) return { acquired: false };
    return { acquired: true, value: await work() };
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, name]).catch(() => {});
    await client.end().catch(() => {});
  }
}
