import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSmtpUrl, smtpMailer } from '../../server/dataprotect/restore/mailer.js';
import { databaseUrlOf, parseDatabaseUrl, withDatabase, type ConnectionSettings } from '../../server/pg/settings.js';
import { databaseExists, dropDatabase } from '../../server/pg/databases.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { startDovecot } from '../../server/host/reference/dovecot.js';
import { ROOT_MARKER } from '../../server/host/reference/layout.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import type { ServerServices } from '../server.js';

// The reference console's choice of host: the installation it backs up and restores into is the BlueMind
// reference host, seeded on first start (its database beside the plugin's on the same PostgreSQL, its files under
// var/host), with the SMTP relay of DP_SMTP_URL for send.* exports (not offered without it). Its backups run in
// the backup process, `bm-dataprotect agent --local` over the same host.

/** The command line's entry: beside this module once built; run from the sources (tests), the built one. */
const CLI = ['../../server/cli/main.js', '../../dist/server/cli/main.js'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));

export interface ReferenceHostOptions {
  /** The plugin's database URL: the host's database goes on the same server. */
  databaseUrl: string;
  /** Default var/host. */
  hostRoot: string;
  /** Default DP_HOST_DATABASE_URL's, else `<plugin database>_host` on the plugin's server. */
  hostDatabase?: ConnectionSettings;
  users?: number;
  log?: (line: string) => void;
}

export interface StandaloneBackups {
  host: ReferenceHost;
  services: ServerServices;
  seeded: boolean;
  /** Drops the host's database and nothing else (tests). */
  dropHostDatabase(): Promise<void>;
}

/** `<plugin database>_host` on the plugin's server: one reference host per console database. */
export function hostDatabaseOf(databaseUrl: string): ConnectionSettings {
  const plugin = parseDatabaseUrl(databaseUrl);
  return withDatabase(plugin, `${plugin.database}_host`);
}

export async function referenceHostServices(o: ReferenceHostOptions): Promise<StandaloneBackups> {
  const db = o.hostDatabase ?? (process.env.DP_HOST_DATABASE_URL ? parseDatabaseUrl(process.env.DP_HOST_DATABASE_URL) : hostDatabaseOf(o.databaseUrl));
  const seededBefore = existsSync(path.join(o.hostRoot, ROOT_MARKER)) && (await databaseExists(db, db.database));
  if (!seededBefore) {
    o.log?.(`seeding the reference host (database ${db.database}, files in ${o.hostRoot})`);
    await seedReference({ connection: db, root: o.hostRoot, users: o.users ?? 12, force: false, log: o.log });
  }
  const host = new ReferenceHost(o.hostRoot, db);
  // Mail restores into a live mailbox go through the host's IMAP server.
  await startDovecot(host.layout, { log: o.log }).then(
    (d) => o.log?.(`reference Dovecot on ${d.host}:${d.port}`),
    (e: Error) => o.log?.(`the reference Dovecot did not start (mail restores through IMAP will fail): ${e.message}`),
  );
  return {
    host,
    services: {
      installation: {
        port: host,
        productVersion: SCHEMA_VERSION,
        mailer: process.env.DP_SMTP_URL ? smtpMailer(parseSmtpUrl(process.env.DP_SMTP_URL)) : null,
        recovery: referenceInstallation(host),
        ...(CLI
          ? { backupProcess: { command: process.execPath, args: [CLI, 'agent', '--local', '--host-root', path.resolve(o.hostRoot)], env: { DATABASE_URL: databaseUrlOf(db) } } }
          : {}),
      },
    },
    seeded: !seededBefore,
    dropHostDatabase: () => dropDatabase(db, db.database),
  };
}
