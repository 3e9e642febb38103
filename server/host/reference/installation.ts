// The reference host as an installation a global restore rebuilds: state under `<host root>/global-restore`,
// Dovecot resynchronised mailbox by mailbox after the spool is back, addresses rewritten in the `.ini` and
// `.conf` files of a server's configuration.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { InstallationPort } from '../installation.js';
import { handSpoolToDovecot } from './dovecot.js';
import type { ReferenceHost } from './host.js';
import { resyncMailbox } from './tree-replacer.js';
import { SCHEMA_VERSION } from './schema.js';

export const GLOBAL_RESTORE_STATE_DIR = 'global-restore';

/** Text files of a server's configuration that may name a server by its address. */
const CONFIG_FILE = /\.(ini|conf|cf|cnf|properties|json|yaml|yml)$/;

export function referenceInstallation(host: ReferenceHost, productVersion: string = SCHEMA_VERSION): InstallationPort {
  const layout = host.layout;
  return {
    host,
    productVersion,
    stateDir: path.join(layout.root, GLOBAL_RESTORE_STATE_DIR),
    async mailSpoolRestored(_server, spoolRoot) {
      // A rehearsal restores beside the live spool: Dovecot serves only the live one.
      if (path.resolve(spoolRoot) !== layout.spool) return 0;
      await handSpoolToDovecot(layout);
      let n = 0;
      for (const domain of await fs.readdir(layout.spool, { withFileTypes: true })) {
        if (!domain.isDirectory()) continue;
        for (const box of await fs.readdir(path.join(layout.spool, domain.name), { withFileTypes: true })) {
          if (!box.isDirectory()) continue;
          const maildir = path.join(layout.spool, domain.name, box.name);
          await resyncMailbox(layout, { server: _server, maildir, partPath: `/spool/${domain.name}/${box.name}`, imapLogin: `${box.name}@${domain.name}` });
          n++;
        }
      }
      return n;
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
