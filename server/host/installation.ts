// What a global restore needs from the installation it rebuilds, beyond the host port: the running product's
// version, a place for its resumable state, and the host-specific steps after a part is back (the mail server
// re-reads its spool; the database and the configuration name a server by its new uid and address).

import type { ConnectionSettings } from '../pg/settings.js';
import type { HostPort } from './port.js';

export interface InstallationPort {
  host: HostPort;
  /** The product version running here (BlueMind's), compared with the generation's. */
  productVersion: string;
  /** Where a global restore keeps its state: outside every data location, kept by a wipe. */
  stateDir: string;
  /**
   * The mail spool of `server` was restored under `spoolRoot`: hand it to the mail server and have it rebuild
   * its indexes from the files, so that IMAP serves every message with its flags. Answers the mailboxes resynced.
   */
  mailSpoolRestored(server: string, spoolRoot: string): Promise<number>;
  /**
   * The restored database names a server by uid `from` (where a mailbox lives, which server a user is on): it now
   * names `to`. Answers what changed, one line per column (`t_mailbox.datalocation: 12 rows`).
   */
  serverRenamed(database: ConnectionSettings, from: string, to: string): Promise<string[]>;
  /** Configuration restored under `confRoot` named a server `from`: it now names it `to`. Answers the files changed. */
  rewriteServerAddress(confRoot: string, from: string, to: string): Promise<string[]>;
}
