// Mail put back into the reference host message by message: Maildir delivery into the spool (a restore from the
// mail/imap part writes the files, flags in their names), and IMAP appends through Dovecot as the master user (a
// restore into a live mailbox).

import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImapFlow } from 'imapflow';
import { fromService } from '../../jobs/explain-error.js';
import type { ImapWriter, LiveMessage, MailboxLocation, MailWriter } from '../port.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from './credentials.js';
import { dovecotEndpoint, handSpoolToDovecot } from './dovecot.js';
import type { HostLayout } from './layout.js';

/** Maildir++ directory of an IMAP folder (`Projects/2026` → `.Projects.2026`). */
export function folderDir(maildir: string, folder: string): string {
  if (folder === 'INBOX' || folder === '') return maildir;
  const parts = folder.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) throw new Error(`invalid folder name ${JSON.stringify(folder)}`);
  return path.join(maildir, '.' + parts.join('.'));
}

export function maildirWriter(layout: HostLayout): MailWriter {
  return {
    async writeMessage(loc: MailboxLocation, folder: string, fileName: string, content: Readable | Buffer) {
      if (!loc.maildir.startsWith(layout.spool + path.sep)) throw new Error(`mailbox ${loc.maildir} is outside the spool ${layout.spool}`);
      if (fileName.includes('/') || fileName.startsWith('.') || fileName.includes('\0')) throw new Error(`invalid message file name ${JSON.stringify(fileName)}`);
      const dir = folderDir(loc.maildir, folder);
      for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(dir, sub), { recursive: true });
      const sub = fileName.includes(':2,') ? 'cur' : 'new';
      const tmp = path.join(dir, 'tmp', `${Date.now()}.${randomBytes(6).toString('hex')}.restore`);
      await pipeline(Buffer.isBuffer(content) ? Readable.from([content]) : content, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      // Maildir delivery: write in tmp/, then rename into place.
      await fs.rename(tmp, path.join(dir, sub, fileName));
      await handSpoolToDovecot(layout, dir);
    },
    async writeArchived(loc: MailboxLocation, relPath: string, content: Buffer, mtime: Date) {
      const root = loc.archive?.dir;
      if (!root || !root.startsWith(layout.archive + path.sep)) throw new Error(`mailbox ${loc.imapLogin} has no archive under ${layout.archive}`);
      const parts = relPath.split('/');
      if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) throw new Error(`invalid archived message path ${JSON.stringify(relPath)}`);
      const file = path.join(root, ...parts);
      await fs.mkdir(path.dirname(file), { recursive: true });
      try {
        await fs.writeFile(file, content, { flag: 'wx', mode: 0o600 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
      await fs.utimes(file, mtime, mtime);
      return true;
    },
  };
}

export async function imapWriter(layout: HostLayout): Promise<ImapWriter> {
  const endpoint = await dovecotEndpoint(layout);
  const pass = await imapAdminPassword(layout);
  const clients = new Map<string, ImapFlow>();
  const client = async (loc: MailboxLocation) => {
    let c = clients.get(loc.imapLogin);
    if (!c) {
      // imapflow (some seventy modules) loads with the first mailbox written over IMAP, not with every command
      // and agent that composes the host.
      const { ImapFlow } = await import('imapflow');
      c = new ImapFlow({ host: endpoint.host, port: endpoint.port, secure: false, logger: false, auth: { user: `${loc.imapLogin}*${IMAP_ADMIN_USER}`, pass } });
      // A refused connection is explained as the mail server's (is Dovecot running?), not as a bare ECONNREFUSED.
      await c.connect().catch((err: unknown) => {
        throw fromService('mail', `${endpoint.host}:${endpoint.port}`, err);
      });
      clients.set(loc.imapLogin, c);
    }
    return c;
  };
  return {
    async ensureFolder(loc, folder) {
      const c = await client(loc);
      if (folder === 'INBOX') return;
      const exists = (await c.list()).some((f) => f.path === folder);
      if (!exists) await c.mailboxCreate(folder);
    },
    async append(loc, folder, content, flags, internalDate) {
      const c = await client(loc);
      await c.append(folder, content, flags, internalDate);
    },
    async messageIds(loc, folder) {
      const c = await client(loc);
      const lock = await c.getMailboxLock(folder, { readOnly: true });
      try {
        const ids: string[] = [];
        if ((c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0) === 0) return ids;
        for await (const m of c.fetch('1:*', { envelope: true })) if (m.envelope?.messageId) ids.push(m.envelope.messageId);
        return ids;
      } finally {
        lock.release();
      }
    },
    async inventory(loc) {
      const c = await client(loc);
      const out: LiveMessage[] = [];
      for (const f of await c.list()) {
        if (f.flags?.has('\\Noselect')) continue;
        const lock = await c.getMailboxLock(f.path, { readOnly: true });
        try {
          if ((c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0) === 0) continue;
          for await (const m of c.fetch('1:*', { envelope: true, size: true, internalDate: true })) {
            out.push({ folder: f.path, messageId: m.envelope?.messageId ?? null, size: m.size ?? 0, internalDate: new Date(m.internalDate ?? 0) });
          }
        } finally {
          lock.release();
        }
      }
      return out;
    },
    async close() {
      for (const c of clients.values()) await c.logout().catch(() => {});
      clients.clear();
    },
  };
}
