// Dovecot's user list (its passwd-file passdb) as the directory says it is: every user and mailshare mailbox by
// its login, a user with the password hash the directory holds. On a BlueMind, Dovecot authenticates through the
// core against the directory database; the reference host writes the same answer into a file. A global restore
// regenerates it from the restored database, so that a host root rebuilt from nothing serves every mailbox.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { withClient } from '../../pg/client.js';
import type { ConnectionSettings } from '../../pg/settings.js';
import type { HostLayout } from './layout.js';
import { ssha256 } from './mail.js';

export const DOVECOT_USERS_FILE = 'users';

interface MailboxLogin {
  login: string;
  password: string | null;
}

/** Logins of the mailboxes Dovecot serves (`name@domain`, as the spool is laid out), with their password hash. */
export async function mailboxLogins(database: ConnectionSettings): Promise<MailboxLogin[]> {
  return withClient(database, async (c) =>
    (
      await c.query<MailboxLogin>(
        `SELECT m.name || '@' || c.uid AS login, u.password
           FROM t_mailbox m
           JOIN t_container_item i ON i.id = m.item_id
           JOIN t_container c ON c.id = i.container_id
           LEFT JOIN t_domain_user u ON u.item_id = m.item_id
          WHERE m.type IN ('user', 'mailshare')
          ORDER BY 1`,
      )
    ).rows,
  );
}

/**
 * Rewrites `<dovecot>/users` from the directory. A mailbox without a password of its own (a mailshare) gets an
 * unusable random hash: only the master user opens it. Answers the number of logins written.
 */
export async function writeDovecotUsersFromDirectory(layout: HostLayout, database: ConnectionSettings): Promise<number> {
  const logins = await mailboxLogins(database);
  const lines = logins.map((l) => `${l.login}:${l.password && l.password.startsWith('{') ? l.password : ssha256(randomBytes(24).toString('base64'))}`);
  await fs.mkdir(layout.dovecot, { recursive: true });
  const file = path.join(layout.dovecot, DOVECOT_USERS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  // Keep the owner and mode Dovecot was given (root:dovecot 0640 when it runs as root).
  const st = await fs.stat(file).catch(() => null);
  await fs.writeFile(tmp, lines.join('\n') + (lines.length ? '\n' : ''), { mode: 0o640 });
  if (st) {
    await fs.chmod(tmp, st.mode & 0o7777);
    await fs.chown(tmp, st.uid, st.gid).catch(() => {});
  }
  await fs.rename(tmp, file);
  return logins.length;
}
