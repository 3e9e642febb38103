import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IMAP_PORT, dovecotStatus, freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from '../../server/host/reference/credentials.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { sandbox, type Sandbox } from './helpers.js';

let sb: Sandbox;

beforeAll(async () => {
  sb = await sandbox('dovecot');
  await seedReference({ connection: sb.db, root: sb.root, users: 6 });
});
afterAll(async () => {
  if (sb) await stopDovecot(hostLayout(sb.root)).catch(() => {});
  await sb?.cleanup();
});

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Holds `host:port` with a plain listener; when another program already holds it, the port is taken all the same. */
async function occupy(host: string, port: number): Promise<{ release(): Promise<void> }> {
  const srv = net.createServer((s) => s.destroy());
  const held = await new Promise<boolean>((resolve, reject) => {
    srv.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(false) : reject(e)));
    srv.listen(port, host, () => resolve(true));
  });
  return { release: () => (held ? new Promise<void>((r) => srv.close(() => r())) : Promise.resolve()) };
}

describe('reference Dovecot', () => {
  it("starts on the mail server's address, serves a seeded user's mail over IMAP, and stops", async () => {
    const layout = hostLayout(sb.root);
    const port = await freePort();
    const st = await startDovecot(layout, { port });
    expect(st).toMatchObject({ running: true, host: '127.0.0.2', port });
    expect(await listening('127.0.0.2', port)).toBe(true);

    // The files of one user's INBOX, as the seeder wrote them.
    const box = path.join(layout.spool, 'acme.lan', (await readdir(path.join(layout.spool, 'acme.lan'))).find((n) => n.includes('.'))!);
    const login = `${path.basename(box)}@acme.lan`;
    const inboxFiles = [...(await readdir(path.join(box, 'cur'))), ...(await readdir(path.join(box, 'new')))];

    const client = new ImapFlow({
      host: '127.0.0.2', port, secure: false, logger: false,
      auth: { user: `${login}*${IMAP_ADMIN_USER}`, pass: await imapAdminPassword(layout) },
    });
    await client.connect();
    try {
      const folders = (await client.list()).map((f) => f.path).sort();
      expect(folders).toEqual(expect.arrayContaining(['INBOX', 'Sent', 'Trash', 'Archive', 'Projects', 'Projects/2026']));
      const status = await client.status('INBOX', { messages: true });
      expect(status && status.messages).toBe(inboxFiles.length);
      const lock = await client.getMailboxLock('INBOX');
      try {
        const msgs = [];
        for await (const m of client.fetch('1:*', { source: true, flags: true, internalDate: true })) msgs.push(m);
        expect(msgs.length).toBe(inboxFiles.length);
        const parsed = await simpleParser(msgs[0].source!);
        expect(parsed.to && 'text' in parsed.to ? parsed.to.text : '').toContain(login);
        // The Maildir flags and mtimes come back as IMAP flags and internal dates.
        const seen = msgs.filter((m) => m.flags!.has('\\Seen')).length;
        expect(seen).toBe(inboxFiles.filter((f) => /:2,[A-Z]*S/.test(f)).length);
        const date = parsed.date!.getTime();
        expect(Math.abs(new Date(msgs[0].internalDate!).getTime() - date)).toBeLessThan(1000);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }

    // A wrong master password is refused.
    const bad = new ImapFlow({ host: '127.0.0.2', port, secure: false, logger: false, auth: { user: `${login}*${IMAP_ADMIN_USER}`, pass: 'wrong' } });
    await expect(bad.connect()).rejects.toThrow();

    expect(await stopDovecot(layout)).toEqual({ wasRunning: true });
    expect((await dovecotStatus(layout)).running).toBe(false);
    expect(await listening('127.0.0.2', port)).toBe(false);
  });

  it("puts restored mail back through the Maildir writer and IMAP, keeping flags and internal dates", async () => {
    const host = new ReferenceHost(sb.root, sb.db);
    const port = await freePort();
    await startDovecot(host.layout, { port });
    try {
      const [user] = await host.directory.entities('globex.lan', { kinds: ['USER'] });
      const loc = (await host.mailboxLocation(user))!;
      expect(loc.partPath).toBe(`/spool/globex.lan/${user.name}`);
      const date = new Date('2025-06-01T10:20:30Z');
      const raw = (subject: string) => Buffer.from(`From: a@b.example\r\nTo: ${user.email}\r\nSubject: ${subject}\r\nDate: ${date.toUTCString()}\r\n\r\nbody\r\n`);
      // A file, as a restore from the mail/imap part writes it: the Maildir name carries the flags.
      const file = raw('from the part');
      await host.writers.mail.writeMessage(loc, 'restored-2026-01-05/Projects', `1748773230.M1P1.bm-mail,S=${file.length}:2,FS`, file);
      await expect(host.writers.mail.writeMessage(loc, '../escape', 'x:2,S', raw('x'))).rejects.toThrow(/invalid folder/);
      // And through IMAP, as a restore into a live mailbox does.
      const imap = await host.writers.imap();
      await imap.ensureFolder(loc, 'Restored');
      await imap.append(loc, 'Restored', raw('through imap'), ['\\Seen', '\\Answered'], date);
      await imap.close();

      const client = new ImapFlow({
        host: '127.0.0.2', port, secure: false, logger: false,
        auth: { user: `${loc.imapLogin}*${IMAP_ADMIN_USER}`, pass: await imapAdminPassword(host.layout) },
      });
      await client.connect();
      try {
        const fetchOne = async (folder: string) => {
          const lock = await client.getMailboxLock(folder);
          try {
            const all = [];
            for await (const m of client.fetch('1:*', { envelope: true, flags: true, internalDate: true })) all.push(m);
            return all;
          } finally {
            lock.release();
          }
        };
        const fromFile = await fetchOne('restored-2026-01-05/Projects');
        expect(fromFile.map((m) => m.envelope!.subject)).toEqual(['from the part']);
        const flags = (m: { flags?: Set<string> }) => [...m.flags!].filter((f) => f !== '\\Recent').sort();
        expect(flags(fromFile[0])).toEqual(['\\Flagged', '\\Seen']);
        const viaImap = await fetchOne('Restored');
        expect(viaImap.map((m) => m.envelope!.subject)).toEqual(['through imap']);
        expect(flags(viaImap[0])).toEqual(['\\Answered', '\\Seen']);
        expect(new Date(viaImap[0].internalDate!).getTime()).toBe(date.getTime());
      } finally {
        await client.logout().catch(() => {});
      }
    } finally {
      await stopDovecot(host.layout);
    }
  });

  it('takes a free port when the default IMAP port is taken, says which, records it, and serves IMAP there', async () => {
    const layout = hostLayout(sb.root);
    const blocker = await occupy('127.0.0.2', DEFAULT_IMAP_PORT);
    try {
      const said: string[] = [];
      const st = await startDovecot(layout, { log: (l) => said.push(l) });
      try {
        expect(st.running).toBe(true);
        expect(st.port).not.toBe(DEFAULT_IMAP_PORT);
        expect(said).toEqual([`IMAP port ${DEFAULT_IMAP_PORT} on 127.0.0.2 is taken: the reference Dovecot listens on ${st.port} instead`]);
        // Recorded where the rest of the product reads it: the host's writers log in there.
        expect(await dovecotStatus(layout)).toMatchObject({ running: true, host: '127.0.0.2', port: st.port });
        const host = new ReferenceHost(sb.root, sb.db);
        const [user] = await host.directory.entities('acme.lan', { kinds: ['USER'] });
        const loc = (await host.mailboxLocation(user))!;
        const imap = await host.writers.imap();
        try {
          const date = new Date('2025-03-04T05:06:07Z');
          await imap.ensureFolder(loc, 'Port check');
          await imap.append(loc, 'Port check', Buffer.from(`Message-ID: <port-check@acme.lan>\r\nSubject: port\r\nDate: ${date.toUTCString()}\r\n\r\nbody\r\n`), [], date);
          expect(await imap.messageIds(loc, 'Port check')).toEqual(['<port-check@acme.lan>']);
        } finally {
          await imap.close();
        }
      } finally {
        await stopDovecot(layout);
      }
    } finally {
      await blocker.release();
    }
  });

  it('refuses, naming the port, when the caller insists on a port that is taken', async () => {
    const layout = hostLayout(sb.root);
    const port = await freePort();
    const blocker = await occupy('127.0.0.2', port);
    try {
      await expect(startDovecot(layout, { port, strictPort: true })).rejects.toThrow(`port ${port} on 127.0.0.2 is taken`);
      expect((await dovecotStatus(layout)).running).toBe(false);
    } finally {
      await blocker.release();
    }
  });
});
