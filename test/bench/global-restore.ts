/**
 * Global restore case of `npm run bench` (called by run.ts; alone: node dist/test/bench/global-restore.js):
 *
 *   1. Seed a 200-user reference host (DP_BENCH_GR_USERS overrides) on the PostgreSQL of BENCH_DATABASE_URL,
 *      with Dovecot serving its spool, and back it up (one generation, every part).
 *   2. Wipe it (database dropped, spool, archive, file hosting and configuration removed) and time
 *      `global-restore run` of that generation: pg_restore from the repository, every table checked, every
 *      tree restored with owners, modes and times, Dovecot's users regenerated and every mailbox resynchronised.
 *   3. The floor: the same dump (taken out of the repository beforehand) through `pg_restore` into a new
 *      database, and `cp -a` of the same files from a copy kept beforehand: no checks, no repository.
 *
 * Prints both times, the restored size and the ratio.
 */

import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { openFile, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { findGeneration } from '../../server/dataprotect/generation/format.js';
import { runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { createDatabase, dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { CORE_SERVER, MAIL_SERVER } from '../../server/host/reference/layout.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { readManifest } from '../../server/sources/pgsql-manifest.js';
import { diskBytes, measure, settle } from './tools.js';

export interface GlobalRestoreBench {
  users: number;
  messages: number;
  restoredBytes: number;
  databaseBytes: number;
  filesBytes: number;
  globalRestoreSeconds: number;
  floorSeconds: number;
  floorPgRestoreSeconds: number;
  floorCopySeconds: number;
  ratio: number;
  /** Seconds per part of the global restore. */
  parts: Record<string, number>;
}

export async function runGlobalRestoreBench(o: { workDir: string; users?: number; log: (s: string) => void }): Promise<GlobalRestoreBench> {
  const users = o.users ?? Number(process.env.DP_BENCH_GR_USERS ?? 200);
  const base = parseDatabaseUrl(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const suffix = randomBytes(3).toString('hex');
  const db = withDatabase(base, `dp_bench_gr_${suffix}`);
  const floorDb = withDatabase(base, `dp_bench_gr_floor_${suffix}`);
  await rm(o.workDir, { recursive: true, force: true });
  await mkdir(o.workDir, { recursive: true });
  const work = await mkdtemp(join(o.workDir, 'run-'));
  const root = join(work, 'host');
  const host = new ReferenceHost(root, db);
  const layout = host.layout;
  const dataDirs = [layout.spool, layout.archive, layout.filehosting, layout.conf(CORE_SERVER), layout.conf(MAIL_SERVER)];
  try {
    o.log(`global restore: seeding ${users} users`);
    const seeded = await seedReference({ connection: db, root, users });
    await startDovecot(layout, { port: await freePort() });
    const repo = await Repository.init(new LocalStorage(join(work, 'repo')));
    try {
      o.log('global restore: backing up');
      const gen = await runGeneration({ repo, host, trigger: 'cli', productVersion: SCHEMA_VERSION, backupEmails: true, backupArchivedEmails: true, skippedTags: [] });
      if (gen.generation.status !== 'VALID') throw new Error(`the generation is ${gen.generation.status}`);

      // What the floor restores: the generation's own dump, and a copy of the files (neither timed).
      const g = await findGeneration(repo, gen.generation.id);
      const pgPart = g.record.parts.find((p) => p.tag === 'bm/pgsql')!;
      const snapshot = g.partSnapshots.find((s) => s.id === pgPart.snapshot)!;
      const manifest = await readManifest(repo, snapshot);
      const dumpFile = join(work, 'floor.pgdump');
      await pipeline(openFile(repo, snapshot, manifest.dump.path), createWriteStream(dumpFile));
      const saved = join(work, 'saved');
      for (const d of dataDirs) await cp(d, join(saved, relative(root, d)), { recursive: true, preserveTimestamps: true });

      o.log('global restore: wiping the installation');
      await dropDatabase(db, db.database);
      for (const d of dataDirs) await rm(d, { recursive: true, force: true });
      settle();
      const started = process.hrtime.bigint();
      const r = await runGlobalRestore({ repo, installation: referenceInstallation(host), generation: gen.generation.id });
      const globalRestoreSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      o.log(`global restore: ${r.parts.length} parts in ${globalRestoreSeconds.toFixed(1)} s`);

      const databaseBytes = await withClient(db, async (c) => Number((await c.query<{ n: string }>('SELECT pg_database_size(current_database())::text AS n')).rows[0].n));
      const filesBytes = dataDirs.reduce((n, d) => n + diskBytes(d), 0);

      o.log('global restore: the floor (pg_restore + cp -a)');
      await createDatabase(floorDb, floorDb.database);
      const pgr = await measure('pg_restore', ['--no-password', '--exit-on-error', '--single-transaction', '-h', base.host, '-p', String(base.port), '-U', base.user, '-d', floorDb.database, dumpFile], {
        env: base.password ? { PGPASSWORD: base.password } : {},
      });
      const copyTarget = join(work, 'floor-files');
      await mkdir(copyTarget);
      const cpa = await measure('cp', ['-a', `${saved}/.`, copyTarget]);
      const floorSeconds = pgr.seconds + cpa.seconds;
      return {
        users, messages: seeded.messages,
        restoredBytes: databaseBytes + filesBytes, databaseBytes, filesBytes,
        globalRestoreSeconds, floorSeconds, floorPgRestoreSeconds: pgr.seconds, floorCopySeconds: cpa.seconds,
        ratio: globalRestoreSeconds / floorSeconds,
        parts: Object.fromEntries(r.parts.map((p) => [p.key, p.durationMs / 1000])),
      };
    } finally {
      await repo.close().catch(() => {});
    }
  } finally {
    await stopDovecot(layout).catch(() => {});
    await dropDatabase(db, db.database).catch(() => {});
    await dropDatabase(floorDb, floorDb.database).catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

export function printGlobalRestoreBench(b: GlobalRestoreBench): void {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  console.log(`\nGlobal restore of a ${b.users}-user reference host (${b.messages} messages):\n`);
  console.log(`  restored size:          ${mib(b.restoredBytes)} (database ${mib(b.databaseBytes)}, files ${mib(b.filesBytes)})`);
  console.log(`  global-restore run:     ${b.globalRestoreSeconds.toFixed(1)} s`);
  console.log(`  floor (pg_restore + cp -a): ${b.floorSeconds.toFixed(1)} s (pg_restore ${b.floorPgRestoreSeconds.toFixed(1)} s, cp -a ${b.floorCopySeconds.toFixed(1)} s)`);
  console.log(`  ratio:                  ${b.ratio.toFixed(2)}x the floor`);
  for (const [part, s] of Object.entries(b.parts)) console.log(`    ${part.padEnd(28)} ${s.toFixed(1)} s`);
}

if (process.argv[1]?.endsWith('/bench/global-restore.js')) {
  runGlobalRestoreBench({ workDir: 'var/bench/global-restore', log: (s) => process.stderr.write(s + '\n') })
    .then(printGlobalRestoreBench)
    .catch((err) => {
      console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    });
}
