// A mailbox (or a domain's file hosting) replaced as a whole: the restore fills a staging directory beside it,
// which is swapped in with two renames, then handed to Dovecot (its indexes and uidlists of the old files
// forgotten) with a forced resynchronisation.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MailboxLocation, TreeReplacer } from '../port.js';
import { forgetMailboxState, handSpoolToDovecot } from './dovecot.js';
import { CORE_SERVER, MAIL_SERVER, type HostLayout } from './layout.js';

const run = promisify(execFile);

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Replaces `live` by what `fill` writes under a fresh staging directory on the same filesystem (`fill` returns
 * the directory inside the staging root that becomes `live`). The old tree is renamed away first and removed
 * last, so an interrupted swap leaves either tree whole.
 */
async function swapTree(stagingParent: string, live: string, fill: (stagingRoot: string) => Promise<string>): Promise<void> {
  const staging = path.join(stagingParent, `.dp-restore-${Date.now()}-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const filled = path.resolve(await fill(staging));
    if (filled !== staging && !inside(staging, filled)) throw new Error(`restored tree ${filled} is outside the staging directory`);
    if (!existsSync(filled)) await fs.mkdir(filled, { recursive: true });
    await fs.mkdir(path.dirname(live), { recursive: true });
    const old = `${staging}.old`;
    const hadLive = existsSync(live);
    if (hadLive) await fs.rename(live, old);
    await fs.rename(filled, live);
    if (hadLive) await fs.rm(old, { recursive: true, force: true });
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

export function treeReplacer(layout: HostLayout): TreeReplacer {
  return {
    async replaceMailbox(loc: MailboxLocation, fill) {
      if (!inside(layout.spool, loc.maildir)) throw new Error(`mailbox ${loc.maildir} is outside the spool ${layout.spool}`);
      // The staging directory is beside the spool (same filesystem), where Dovecot does not look.
      await swapTree(layout.serverRoot(MAIL_SERVER), loc.maildir, fill);
      // Dovecot's state of the old files would hide restored messages it had expunged: it rebuilds from the files.
      await forgetMailboxState(layout, loc.maildir);
      await handSpoolToDovecot(layout, loc.maildir);
      await resyncMailbox(layout, loc);
    },
    async replaceArchive(loc: MailboxLocation, fill) {
      if (!loc.archive || !inside(layout.archive, loc.archive.dir)) throw new Error(`archive of ${loc.imapLogin} is outside ${layout.archive}`);
      await swapTree(layout.serverRoot(MAIL_SERVER), loc.archive.dir, fill);
    },
    async replaceFileHosting(domainUid, fill) {
      const live = path.join(layout.filehosting, domainUid);
      if (!inside(layout.filehosting, live) || domainUid.includes('/')) throw new Error(`invalid domain ${JSON.stringify(domainUid)}`);
      await swapTree(layout.serverRoot(CORE_SERVER), live, fill);
    },
  };
}

/** Dovecot rebuilds the mailbox's index from the files (new UIDs, flags read from the names). */
export async function resyncMailbox(layout: HostLayout, loc: MailboxLocation): Promise<void> {
  const conf = path.join(layout.dovecot, 'dovecot.conf');
  if (!existsSync(conf)) return; // Dovecot never ran on this host: it indexes the files when it first opens them.
  try {
    await run('/usr/bin/doveadm', ['-c', conf, 'force-resync', '-u', loc.imapLogin, '*'], { timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`doveadm force-resync of ${loc.imapLogin}: ${(err.stderr || err.message).trim()}`);
  }
}
