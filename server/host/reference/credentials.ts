// The reference host's credentials, all derived from one secret kept under the host root: the password of the
// Dovecot master user that restores and tests log in with, and the (never handed out) mailbox passwords whose
// hashes the directory and Dovecot's user list hold.

import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { HostLayout } from './layout.js';
import { ssha256 } from './mail.js';

/** The Dovecot master user: a restore logs in as `<mailbox email>*bmadmin`, as BlueMind's logs in as admin0. */
export const IMAP_ADMIN_USER = 'bmadmin';

/** The host's secret, created once per root (mode 0600 in a 0700 folder). */
export async function hostSecret(layout: HostLayout): Promise<Buffer> {
  await fs.mkdir(layout.secrets, { recursive: true, mode: 0o700 });
  const file = path.join(layout.secrets, 'host.key');
  try {
    return await fs.readFile(file);
  } catch {
    const key = randomBytes(32);
    await fs.writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(() => {});
    return fs.readFile(file);
  }
}

/** Password of the Dovecot master user `IMAP_ADMIN_USER`. */
export async function imapAdminPassword(layout: HostLayout): Promise<string> {
  const secret = await hostSecret(layout);
  return createHmac('sha256', secret).update('imap-admin').digest('base64url').slice(0, 24);
}

/**
 * `{SSHA256}` hash of a mailbox's password. The password and the salt are derived from the secret, so the same
 * seed on the same host gives the same rows; users cannot log in themselves (no password is handed out).
 */
export function mailboxPasswordHash(secret: Buffer, email: string): string {
  const pw = createHmac('sha256', secret).update(email).digest('base64url').slice(0, 16);
  return ssha256(pw, createHmac('sha256', secret).update('salt:' + email).digest().subarray(0, 8));
}
