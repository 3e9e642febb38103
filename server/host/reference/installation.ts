// The reference host as an installation a global restore rebuilds: state under `<host root>/global-restore`,
// Dovecot's user list regenerated from the restored directory and Dovecot resynchronised mailbox by mailbox after
// the spool is back, server uids renamed in the database, addresses rewritten in a server's configuration files.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { InstallationPort } from '../installation.js';
import { withClient } from '../../pg/client.js';
import { forgetMailboxState, handSpoolToDovecot } from './dovecot.js';
import { writeDovecotUsersFromDirectory } from './dovecot-users.js';
import type { ReferenceHost } from './host.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { HostLayout } from './layout.js';
import { SCHEMA_VERSION } from './schema.js';

export const GLOBAL_RESTORE_STATE_DIR = 'global-restore';

/** Text files of a server's configuration that may name a server by its address. */
const CONFIG_FILE = /\.(ini|conf|cf|cnf|properties|json|yaml|yml)$/;

/**
 * Where the reference schema names a server (by uid): the server of a mailbox, of a directory entry, of a user's
 * and a group's mail. The schema keeps no server addresses (the topology is the host's): those live in the
 * configuration files only.
 */
const SERVER_COLUMNS: readonly (readonly [string, string])[] = [
  ['t_mailbox', 'datalocation'],
  ['t_directory_entry', 'datalocation'],
  ['t_domain_user', 'server_id'],
  ['t_group', 'server_id'],
];

export function referenceInstallation(host: ReferenceHost, productVersion: string = SCHEMA_VERSION): InstallationPort {
  const layout = host.layout;
  return {
    host,
    productVersion,
    stateDir: path.join(layout.root, GLOBAL_RESTORE_STATE_DIR),
    async mailSpoolRestored(_server, spoolRoot) {
      // A rehearsal restores beside the live spool: Dovecot serves only the live one.
      if (path.resolve(spoolRoot) !== layout.spool) return 0;
      // Dovecot's user list is no part of any backup: it comes from the restored directory, as on a BlueMind.
      await writeDovecotUsersFromDirectory(layout, host.database);
      await handSpoolToDovecot(layout);
      const logins: string[] = [];
      for (const domain of await fs.readdir(layout.spool, { withFileTypes: true })) {
        if (!domain.isDirectory()) continue;
        for (const box of await fs.readdir(path.join(layout.spool, domain.name), { withFileTypes: true })) {
          if (!box.isDirectory()) continue;
          // State Dovecot kept of the spool before the restore would hide restored messages it had expunged.
          await forgetMailboxState(layout, path.join(layout.spool, domain.name, box.name));
          logins.push(`${box.name}@${domain.name}`);
        }
      }
      await resyncMailboxes(layout, logins);
      return logins.length;
    },
    async serverRenamed(database, from, to) {
      return withClient(database, async (c) => {
        const changed: string[] = [];
        for (const [table, column] of SERVER_COLUMNS) {
          const r = await c.query(`UPDATE ${table} SET ${column} = $2 WHERE ${column} = $1`, [from, to]);
          if (r.rowCount) changed.push(`${table}.${column}: ${r.rowCount} rows`);
        }
        return changed;
      });
    },
    async rewriteServerAddress(confRoot, from, to) {
      const changed: string[] = [];
      // The address as a whole token: 127.0.0.1 must not match inside 127.0.0.12.
      const re = new RegExp(`(?<![0-9A-Za-z.-])${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![0-9A-Za-z-]|\\.[0-9A-Za-z])`, 'g');
      const walk = async (dir: string): Promise<void> => {
        for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else if (e.isFile() && CONFIG_FILE.test(e.name)) {
            const text = await fs.readFile(p, 'utf8');
            const next = text.replace(re, to);
            if (next !== text) {
              const st = await fs.stat(p);
              await fs.writeFile(p, next);
              await fs.chmod(p, st.mode & 0o7777);
              await fs.chown(p, st.uid, st.gid).catch(() => {});
              changed.push(path.relative(confRoot, p));
            }
          }
        }
      };
      await walk(confRoot);
      return changed;
    },
  };
}

const run = promisify(execFile);

/**
 * Dovecot rebuilds the indexes of every mailbox from the files, all in one doveadm process (one per mailbox costs
 * a process start each: most of a whole spool's restore time).
 */
async function resyncMailboxes(layout: HostLayout, logins: readonly string[]): Promise<void> {
  const conf = path.join(layout.dovecot, 'dovecot.conf');
  // Dovecot never ran on this host: it indexes the files when it first opens them.
  if (!existsSync(conf) || !logins.length) return;
  const list = path.join(layout.dovecot, `resync-${process.pid}.users`);
  await fs.writeFile(list, logins.join('\n') + '\n', { mode: 0o600 });
  try {
    await run('/usr/bin/doveadm', ['-c', conf, 'force-resync', '-F', list, '*'], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`doveadm force-resync of ${logins.length} mailboxes: ${(err.stderr || err.message).trim().split('\n').slice(0, 5).join('; ')}`);
  } finally {
    await fs.rm(list, { force: true });
  }
}
