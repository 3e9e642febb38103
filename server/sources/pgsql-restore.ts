// A database restore: the part's dump into a new database through pg_restore, checked table by table against
// the manifest's fingerprints.

import { openFile, type Repository, type SnapshotInfo } from '../engine/index.js';
import { withClient } from '../pg/client.js';
import { createDatabase, databaseExists, dropDatabase } from '../pg/databases.js';
import type { ConnectionSettings } from '../pg/settings.js';
import { readManifest, tableFingerprints } from './pgsql-manifest.js';
import { pgTool } from './pgsql-tool.js';

export interface DatabaseRestoreOptions {
  repo: Repository;
  snapshot: SnapshotInfo;
  /** Where to restore: a database that must not exist yet, on this server. */
  target: ConnectionSettings;
  progress?: { notice?(message: string): void; bytes?(done: number, total: number): void };
  pgRestore?: string;
}

export interface DatabaseRestoreResult {
  database: string;
  tables: number;
  rows: number;
  bytes: number;
  durationMs: number;
}

/**
 * Restores the dump of a `bm/pgsql` snapshot into a new database: pg_restore reads the dump from the repository
 * as a stream (no temp file), in one transaction; then every table's row count and hash are checked against
 * the manifest. On any failure the new database is dropped.
 */
export async function restoreDatabase(opts: DatabaseRestoreOptions): Promise<DatabaseRestoreResult> {
  const started = Date.now();
  const t = opts.target;
  const manifest = await readManifest(opts.repo, opts.snapshot);
  if (await databaseExists(t, t.database)) {
    throw new Error(`database ${t.database} already exists on ${t.host}:${t.port}: a database restore creates a new database`);
  }
  await createDatabase(t, t.database);
  try {
    const bin = opts.pgRestore ?? 'pg_restore';
    const { child, done } = pgTool(bin, ['--format=custom', '--exit-on-error', '--single-transaction', '--no-password', `--dbname=${t.database}`], t);
    child.stdout!.resume();
    const dump = openFile(opts.repo, opts.snapshot, manifest.dump.path);
    let bytes = 0;
    dump.on('data', (b: Buffer) => {
      bytes += b.length;
      opts.progress?.bytes?.(bytes, manifest.dump.bytes);
    });
    dump.pipe(child.stdin!);
    // pg_restore stopping early closes its stdin: that is reported by `done`, not as a pipe error.
    child.stdin!.on('error', () => {});
    const readFailed = new Promise<never>((_, reject) => dump.once('error', (e) => {
      child.kill('SIGTERM');
      reject(new Error(`reading the dump from snapshot ${opts.snapshot.id.slice(0, 8)}: ${e.message}`));
    }));
    await Promise.race([done, readFailed]);
    opts.progress?.notice?.(`restored ${manifest.database} into ${t.database}; checking tables`);

    const restored = await withClient(t, (c) => tableFingerprints(c));
    const problems: string[] = [];
    for (const [name, want] of Object.entries(manifest.tables)) {
      const got = restored[name];
      if (!got) problems.push(`${name}: missing`);
      else if (got.rows !== want.rows) problems.push(`${name}: ${got.rows} rows, expected ${want.rows}`);
      else if (got.hash !== want.hash) problems.push(`${name}: content differs from the backup`);
    }
    for (const name of Object.keys(restored)) if (!manifest.tables[name]) problems.push(`${name}: not in the backup`);
    if (problems.length) throw new Error(`restored database ${t.database} does not match the backup: ${problems.slice(0, 5).join('; ')}`);
    return {
      database: t.database,
      tables: Object.keys(restored).length,
      rows: Object.values(restored).reduce((n, x) => n + x.rows, 0),
      bytes,
      durationMs: Date.now() - started,
    };
  } catch (e) {
    await dropDatabase(t, t.database).catch(() => {});
    throw e;
  }
}
