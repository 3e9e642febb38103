import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, withClient } from '../../server/pg/client.js';
import { createDatabase, databaseExists } from '../../server/pg/databases.js';
import type { InstallationPort } from '../../server/host/installation.js';
import { lockInstallation } from '../../server/dataprotect/global-restore/lock.js';
import { sandbox, type Sandbox } from '../host/helpers.js';

// A run killed during DROP (or CREATE) DATABASE leaves that statement running in the server, and its lock is
// released at once: the next run's lock waits for the statement to end before it touches the databases.

let sb: Sandbox;
let stateDir: string;
beforeAll(async () => {
  sb = await sandbox('grlock');
  stateDir = await mkdtemp(path.join(tmpdir(), 'dp-grlock-'));
});
afterAll(async () => {
  await sb?.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

it("the lock waits for a killed run's DROP DATABASE still running in the server, and names it when it does not end", async () => {
  await createDatabase(sb.db);
  const inst = { host: { databases: async () => [{ connection: sb.db }] }, stateDir } as unknown as InstallationPort;
  const db = sb.db.database;
  // Another session holds the database (COMMENT ON DATABASE locks it to its transaction's end), so that the
  // orphaned DROP, as a killed run leaves it, stays running until we let it go.
  const holder = await connect(sb.db, 'postgres');
  const orphan = await connect(sb.db, 'postgres');
  try {
    await holder.query('BEGIN');
    await holder.query(`COMMENT ON DATABASE "${db}" IS 'held by the test'`);
    const dropped = orphan.query(`DROP DATABASE "${db}"`).then(() => 'dropped', (e: Error) => e.message);
    await waitFor(async () =>
      withClient(sb.db, async (c) => (await c.query(`SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'DROP DATABASE%' AND query LIKE $1`, [`%${db}%`])).rowCount! > 0, 'postgres'),
    );

    await expect(lockInstallation(inst, 'g1', { leftoverWaitMs: 300 })).rejects.toThrow(/earlier run's "DROP DATABASE .*" \(PostgreSQL session \d+\) is still running .*pg_terminate_backend\(\d+\)/);

    let locked = false;
    const lock = lockInstallation(inst, 'g1').then((l) => ((locked = true), l));
    // Waiting: the lock is not granted while the DROP runs (checked by state, not by a race on time).
    await new Promise((r) => setTimeout(r, 500));
    expect(locked).toBe(false);
    await holder.query('ROLLBACK');
    const l = await lock;
    // Granted once the DROP ended: the database is gone by then.
    expect(await dropped).toBe('dropped');
    expect(await databaseExists(sb.db)).toBe(false);
    await l.release();
  } finally {
    await holder.end().catch(() => {});
    await orphan.end().catch(() => {});
  }
});

async function waitFor(cond: () => Promise<boolean>, deadlineMs = 60_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
