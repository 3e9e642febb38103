import type pg from 'pg';

// One family of session advisory locks for every process that works on one plugin database (the plugin's nodes
// and the CLI): the same key pair means the same lock, whoever takes it.

/** "dp": the first key of our advisory locks; the second is hashtext(name). */
const LOCK_CLASS = 0x6470;

export type Locked<T> = { acquired: true; value: T } | { acquired: false };

/**
 * Runs `work` while holding the lock `name` on this connection, or answers { acquired: false } at once when another
 * session holds it. A session that dies releases its locks with its connection, so a crash never leaves one behind.
 */
export async function withAdvisoryLock<T>(client: pg.ClientBase, name: string, work: () => Promise<T>): Promise<Locked<T>> {
  const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, name]);
  if (!r.rows[0].ok) return { acquired: false };
  try {
    return { acquired: true, value: await work() };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, name]).catch(() => {});
  }
}
