// What a global restore needs from the installation it rebuilds, beyond the host port: the running product's
// version, a place for its resumable state, and the host-specific steps after a part is back (the mail server
// re-reads its spool; configuration names a server by its new address).

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
  /** Configuration restored under `confRoot` named a server `from`: it now names it `to`. Answers the files changed. */
  rewriteServerAddress(confRoot: string, from: string, to: string): Promise<string[]>;
}
