// The places a global restore writes: is each one empty, how much room is there, and clearing one (a wipe, or a
// part that was interrupted and is redone from scratch).

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ConnectionSettings } from '../../pg/settings.js';
import { withClient } from '../../pg/client.js';
import { databaseExists, dropDatabase } from '../../pg/databases.js';
import type { DataLocation } from '../../host/port.js';

/** Null when absent or empty; otherwise what is in it. */
export async function databaseContent(c: ConnectionSettings): Promise<string | null> {
  if (!(await databaseExists(c, c.database))) return null;
  const tables = await withClient(c, async (client) =>
    (await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`)).rows[0].n,
  );
  return Number(tables) === 0 ? null : `database ${c.database} holds ${tables} tables`;
}

/** Null when absent or empty; otherwise what is in it. */
export async function directoryContent(dir: string): Promise<string | null> {
  try {
    const entries = await fs.readdir(dir);
    return entries.length === 0 ? null : `${dir} holds ${entries.length} entries`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return `${dir} is a file`;
    throw e;
  }
}

export async function clearDatabase(c: ConnectionSettings): Promise<void> {
  await dropDatabase(c, c.database);
}

/** Where a tree is filled before it takes its place (same filesystem, beside it). */
export function stagingOf(fsPath: string): string {
  return path.join(path.dirname(fsPath), `.dp-global-restore-${path.basename(fsPath)}`);
}

/**
 * A folder being cleared may still be written into for a while: a run killed while the mail server resynchronised
 * the restored spool leaves that work going (doveadm), which adds index files as they are removed. A removal that
 * finds a folder not empty (or busy) tries again, up to some 20 s.
 */
const CLEAR_RETRIES = { maxRetries: 20, retryDelay: 100 };

export async function clearLocation(l: Pick<DataLocation, 'fsPath'>): Promise<void> {
  await fs.rm(stagingOf(l.fsPath), { recursive: true, force: true, ...CLEAR_RETRIES });
  await fs.rm(l.fsPath, { recursive: true, force: true, ...CLEAR_RETRIES });
}

/** Free bytes on the filesystem that holds (or will hold) `p`: its nearest existing ancestor's. */
export async function freeBytes(p: string): Promise<number> {
  let cur = path.resolve(p);
  for (;;) {
    try {
      const s = await fs.statfs(cur);
      return s.bavail * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || cur === path.dirname(cur)) throw e;
      cur = path.dirname(cur);
    }
  }
}

/** The data directory of a PostgreSQL server, when it can be read (superuser, same machine). */
export async function databaseDirectory(c: ConnectionSettings): Promise<string | null> {
  try {
    const dir = await withClient({ ...c, database: 'postgres' }, async (client) => (await client.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`)).rows[0].d);
    await fs.access(dir);
    return dir;
  } catch {
    return null;
  }
}
