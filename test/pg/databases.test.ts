import { randomBytes } from 'node:crypto';
import { afterAll, describe as suite, expect, it } from 'vitest';
import { withAdvisoryLock } from '../../server/pg/advisory-lock.js';
import { connect, withClient } from '../../server/pg/client.js';
import { createDatabase, databaseExists, dropDatabase, ensureDatabase } from '../../server/pg/databases.js';
import { parseDatabaseUrl, siblingDatabaseUrl, withDatabase } from '../../server/pg/settings.js';

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const id = randomBytes(4).toString('hex');
const server = parseDatabaseUrl(PG_URL);
const made: string[] = [];

function name(what: string): string {
  const n = `dp_test_pg_${what}_${id}`;
  made.push(n);
  return n;
}

afterAll(async () => {
  for (const n of made) await dropDatabase(server, n).catch(() => {});
});

suite('databases on the real PostgreSQL', () => {
  it('creates a database in UTF-8, sees it, and drops it while a session is still connected', async () => {
    const db = withDatabase(server, name('plain'));
    expect(await databaseExists(db)).toBe(false);
    await createDatabase(db);
    expect(await databaseExists(db)).toBe(true);
    expect(await withClient(db, async (c) => (await c.query<{ e: string }>("SELECT current_setting('server_encoding') AS e")).rows[0].e)).toBe('UTF8');

    const lingering = await connect(db);
    try {
      await dropDatabase(db);
    } finally {
      await lingering.end().catch(() => {});
    }
    expect(await databaseExists(db)).toBe(false);
  });

  it('creates and drops a database whose name holds a quote and a space', async () => {
    const odd = name('quote') + '" x';
    await createDatabase(server, odd);
    expect(await databaseExists(server, odd)).toBe(true);
    await dropDatabase(server, odd);
    expect(await databaseExists(server, odd)).toBe(false);
  });

  it('ensures the database a URL names, twice without error, then drops it by URL', async () => {
    const url = siblingDatabaseUrl(PG_URL, name('ensure'));
    await ensureDatabase(url);
    await ensureDatabase(url);
    expect(await databaseExists(url)).toBe(true);
    await dropDatabase(url);
    expect(await databaseExists(url)).toBe(false);
  });

  it('says which database it could not reach, without the password', async () => {
    const missing = { ...withDatabase(server, name('missing')), password: 'hunter2' };
    await expect(connect(missing)).rejects.toThrow(new RegExp(`^connecting to postgres@${server.host}:${server.port}/${missing.database}: `));
    await expect(connect(missing)).rejects.not.toThrow(/hunter2/);
  });

  it('lets one session hold the advisory lock of a name and the other one wait its turn', async () => {
    const lock = `pg-test-${id}`;
    const other = await connect(server);
    try {
      const inner = await withClient(server, (c) => withAdvisoryLock(c, lock, () => withAdvisoryLock(other, lock, async () => 'both')));
      expect(inner).toEqual({ acquired: true, value: { acquired: false } });
      // Released when the work ended: the other session gets it now.
      expect(await withAdvisoryLock(other, lock, async () => 'second')).toEqual({ acquired: true, value: 'second' });
    } finally {
      await other.end().catch(() => {});
    }
  });
});
