/**
 * Database case of `npm run bench` (called by run.ts): the whole `bm/pgsql` part (pg_dump streamed into our
 * repository plus the per-entity exports) against `pg_dump | restic backup --stdin`, on the same change.
 *
 *   1. Seed a BlueMind-schema database of about 100 MB of dump (reference host, 2000 users by default;
 *      DP_BENCH_DB_USERS overrides) on the PostgreSQL of BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432).
 *   2. Generation 1: ours (`backupDatabase`, with entity exports) and restic (`pg_dump --format=custom
 *      --compress=0 | restic backup --stdin`, repository version 2, i.e. compressed like ours).
 *   3. Change 1% of the rows of the item tables at scattered places (runs of 16 items, see changeSql), delete a
 *      few items and add some events; generation 2 of both. "Added" is the growth of each repository on disk
 *      (`du -sb`), so both count compressed bytes plus their own metadata.
 *   4. Worst case: 1% of single rows changed by hash all over the tables; generation 3 of both (gen3 figures).
 *   5. Restore our generation 3 into a new database (pg_restore from the repository stream, checked table by table).
 *
 * The targets are in the bench's table (cases.ts): the first generation <= 1.3x restic's, the one after
 * scattered single-row updates (generation 3) <= 0.25x restic's.
 * Returns flat figures: dumpBytes, oursGen1Bytes, oursGen2Bytes, resticGen1Bytes, resticGen2Bytes,
 * oursGen2PctOfGen1, resticGen2PctOfGen1, oursToResticGen2 (ratio), timings in seconds,
 * and the same for the worst-case generation 3 (oursGen3Bytes, resticGen3Bytes, oursToResticGen3).
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { parseDatabaseUrl, pgToolEnv, withDatabase } from '../../server/pg/settings.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { backupDatabase } from '../../server/sources/pgsql-backup.js';
import { restoreDatabase } from '../../server/sources/pgsql-restore.js';
import { diskBytes } from './tools.js';

/**
 * The change of the benchmark: 1% of the rows of each item table (events, contacts, tasks, and the item rows whose
 * versions BlueMind bumps) updated at scattered places, 40 items deleted, 300 events added. `clustered` touches
 * runs of 16 consecutive items (as when users edit their own calendars or address books), one run every 1600
 * items over the whole table: the reference change, on which restic re-adds most of its first
 * generation. `rows` touches single rows chosen by hash, the worst case for any chunking backup (every 12 KiB
 * chunk of a small-row table holds a changed row).
 */
export function changeSql(kind: 'clustered' | 'rows', salt: string): string {
  const pick = (col: string) => (kind === 'clustered' ? `(${col} / 16) % 100 = 7` : `abs(hashtext(${col}::text || '${salt}')) % 100 = 7`);
  return `
DROP TABLE IF EXISTS touched;
CREATE TEMP TABLE touched AS
  SELECT item_id FROM t_calendar_vevent WHERE ${pick('item_id')}
  UNION SELECT item_id FROM t_addressbook_vcard WHERE ${pick('item_id')}
  UNION SELECT item_id FROM t_todolist_vtodo WHERE ${pick('item_id')};
UPDATE t_calendar_vevent SET description = description || ' [moved to room ${salt}]', sequence = sequence + 1,
       dtstart_timestamp = dtstart_timestamp + interval '1 hour', dtend_timestamp = dtend_timestamp + interval '1 hour'
 WHERE item_id IN (SELECT item_id FROM touched);
UPDATE t_addressbook_vcard SET note = coalesce(note, '') || ' [new phone ${salt}]', tel = array_append(tel, '+33 5 00 00 00 00'),
       tel_parameters = array_append(tel_parameters, '{"type":"cell"}')
 WHERE item_id IN (SELECT item_id FROM touched);
UPDATE t_todolist_vtodo SET status = 'Completed', percent = 100, completed_timestamp = '2026-02-01 12:00'
 WHERE item_id IN (SELECT item_id FROM touched);
UPDATE t_container_item SET version = version + 1, updated = updated + interval '1 day' WHERE id IN (SELECT item_id FROM touched);
DELETE FROM t_container_item WHERE id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id
  WHERE c.container_type IN ('calendar', 'addressbook', 'todolist') ORDER BY hashtext(i.uid || '${salt}') LIMIT 40);
WITH cals AS (SELECT id, uid FROM t_container WHERE container_type = 'calendar' ORDER BY hashtext(uid || '${salt}') LIMIT 60),
     i AS (INSERT INTO t_container_item (container_id, uid, displayname, version)
           SELECT cals.id, 'bench-added-${salt}-' || cals.id || '-' || g, 'Added meeting ' || g, 1 FROM cals, generate_series(1, 5) g
           RETURNING id, displayname)
INSERT INTO t_calendar_vevent (item_id, summary, description, dtstart_timestamp, dtstart_timezone, dtstart_precision,
                               dtend_timestamp, dtend_timezone, dtend_precision, sequence)
SELECT id, displayname, 'Added after the previous generation', '2026-03-02 10:00', 'Europe/Paris', 'DateTime',
       '2026-03-02 11:00', 'Europe/Paris', 'DateTime', 0 FROM i;
`;
}

function sh(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script.slice(0, 80)}… exited with ${code}: ${err.trim()}`))));
  });
}

const secs = (ms: number) => Math.round(ms / 100) / 10;
const pct = (a: number, b: number) => Math.round((1000 * a) / b) / 10;

export async function runDatabaseBench(opts: { workDir: string; log: (line: string) => void }): Promise<Record<string, number | string>> {
  const { workDir, log } = opts;
  const users = Number(process.env.DP_BENCH_DB_USERS ?? 2000);
  const base = parseDatabaseUrl(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const id = randomBytes(3).toString('hex');
  const db = withDatabase(base, `dp_bench_${id}`);
  const restored = withDatabase(base, `dp_bench_${id}_restored`);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const oursDir = join(workDir, 'ours');
  const resticDir = join(workDir, 'restic');
  const resticEnv = { ...pgToolEnv(db), RESTIC_PASSWORD: 'bench-only', RESTIC_REPOSITORY: resticDir, RESTIC_CACHE_DIR: join(workDir, 'restic-cache') };

  try {
    log(`database: seeding ${users} users into ${db.database} ...`);
    const seeded = await seedReference({ connection: db, root: join(workDir, 'host'), users, eventsPerUser: 30, contactsPerUser: 25, todosPerUser: 4, files: false });
    log(`database: seeded in ${secs(seeded.ms)} s (${seeded.items} items)`);

    const repo = await Repository.init(new LocalStorage(oursDir));
    const host = new ReferenceHost(join(workDir, 'host'), db);
    await sh('restic init --repository-version 2 -q', resticEnv);
    const resticBackup = () => sh('pg_dump --format=custom --compress=0 --no-password | restic backup --stdin --stdin-filename bj.pgdump --json -q', resticEnv);

    const gen = async (n: number) => {
      const o0 = diskBytes(oursDir);
      let t = Date.now();
      const ours = await backupDatabase({ repo, server: 'bm-master', connection: db, entities: host.entityData });
      const oursMs = Date.now() - t;
      const oursBytes = diskBytes(oursDir) - o0;
      const r0 = diskBytes(resticDir);
      t = Date.now();
      await resticBackup();
      const resticMs = Date.now() - t;
      const resticBytes = diskBytes(resticDir) - r0;
      log(`database: generation ${n}: ours +${oursBytes} B in ${secs(oursMs)} s (dump ${ours.manifest.dump.bytes} B, ${ours.manifest.entities.length} entities); restic +${resticBytes} B in ${secs(resticMs)} s`);
      return { ours, oursMs, oursBytes, resticMs, resticBytes };
    };

    const change = (kind: 'clustered' | 'rows', salt: string) =>
      withClient(db, async (c) => {
        await c.query(changeSql(kind, salt));
        const n = Number((await c.query('SELECT count(*) AS n FROM touched')).rows[0].n);
        const all = Number((await c.query('SELECT count(*) AS n FROM t_container_item')).rows[0].n);
        log(`database: ${kind} change: updated ${n} of ${all} items (${pct(n, all)}%) with their rows, deleted 40, added 300 events`);
        return n;
      });
    const g1 = await gen(1);
    const changed = await change('clustered', 'a');
    const g2 = await gen(2);
    const changedRows = await change('rows', 'b');
    const g3 = await gen(3);

    let t = Date.now();
    const r = await restoreDatabase({ repo, snapshot: g3.ours.snapshot, target: restored });
    const restoreMs = Date.now() - t;
    log(`database: restored generation 3 into ${restored.database}: ${r.tables} tables, ${r.rows} rows checked, in ${secs(restoreMs)} s`);
    await repo.close();

    const ratio = g2.oursBytes / g2.resticBytes;
    return {
      users,
      items: seeded.items,
      changedItems: changed,
      dumpBytes: g1.ours.manifest.dump.bytes,
      oursGen1Bytes: g1.oursBytes,
      oursGen2Bytes: g2.oursBytes,
      resticGen1Bytes: g1.resticBytes,
      resticGen2Bytes: g2.resticBytes,
      oursGen2PctOfGen1: pct(g2.oursBytes, g1.oursBytes),
      resticGen2PctOfGen1: pct(g2.resticBytes, g1.resticBytes),
      oursToResticGen2: Math.round(ratio * 1000) / 1000,
      oursGen1Seconds: secs(g1.oursMs),
      oursGen2Seconds: secs(g2.oursMs),
      resticGen1Seconds: secs(g1.resticMs),
      resticGen2Seconds: secs(g2.resticMs),
      restoreSeconds: secs(restoreMs),
      // Worst case, as a third generation: single rows changed all over the tables.
      rowsChangedItems: changedRows,
      oursGen3Bytes: g3.oursBytes,
      resticGen3Bytes: g3.resticBytes,
      oursGen3PctOfGen1: pct(g3.oursBytes, g1.oursBytes),
      resticGen3PctOfGen1: pct(g3.resticBytes, g1.resticBytes),
      oursToResticGen3: Math.round((g3.oursBytes / g3.resticBytes) * 1000) / 1000,
    };
  } finally {
    await dropDatabase(base, db.database).catch(() => {});
    await dropDatabase(base, restored.database).catch(() => {});
  }
}
