// Shared fixtures for the host and sources suites: a private database and host root per test file.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ConnectionSettings, parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { hostLayout } from '../../server/host/reference/layout.js';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface Sandbox {
  db: ConnectionSettings;
  root: string;
  /** Another unique database name on the same server (dropped by cleanup). */
  extraDb(prefix: string): ConnectionSettings;
  cleanup(): Promise<void>;
}

export async function sandbox(tag: string): Promise<Sandbox> {
  const id = randomBytes(4).toString('hex');
  const base = parseDatabaseUrl(PG_URL);
  const db = withDatabase(base, `dp_test_${tag}_${id}`);
  const root = await mkdtemp(path.join(tmpdir(), `dp-host-${tag}-`));
  const extras: string[] = [db.database];
  return {
    db,
    root,
    extraDb(prefix: string) {
      const name = `dp_test_${prefix}_${id}_${extras.length}`;
      extras.push(name);
      return withDatabase(base, name);
    },
    async cleanup() {
      // A Dovecot left running by a failed test would outlive its deleted directory.
      for (const r of [root, path.join(root, 'host')]) await stopDovecot(hostLayout(r)).catch(() => {});
      for (const name of extras) await dropDatabase(base, name).catch(() => {});
      await rm(root, { recursive: true, force: true });
    },
  };
}
