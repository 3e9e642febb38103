// The files the seeder writes beside the database: one Maildir++ per mailbox with messages in every folder
// (mtime = internal date), archived mail, file hosting and each server's configuration.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Prng } from '../../demo/prng.js';
import type { ConnectionSettings } from '../../pg/settings.js';
import { CORE_SERVER, MAIL_SERVER, ROOT_MARKER, type HostLayout } from './layout.js';
import { attachmentFor, buildMessage, maildirName } from './mail.js';
import { BASE_TIME, DAY, type Mailbox } from './seed-model.js';
import { paragraph, sentence } from './words.js';

/** Mailbox a message file goes to, with the folders every seeded mailbox has. */
const FOLDERS = ['INBOX', 'Sent', 'Trash', 'Archive', 'Projects', 'Projects/2026'] as const;

async function rmChecked(layout: HostLayout, dir: string): Promise<void> {
  if (!dir.startsWith(layout.root + path.sep)) throw new Error(`refusing to remove ${dir}: outside ${layout.root}`);
  await fs.rm(dir, { recursive: true, force: true });
}

export interface FilesOptions {
  connection: ConnectionSettings;
  installationId: string;
  /** Write into a non-empty root that is not a reference host. */
  force: boolean;
}

export async function writeFiles(layout: HostLayout, rng: Prng, mailboxes: Mailbox[], perMailbox: number, opts: FilesOptions): Promise<number> {
  await fs.mkdir(layout.root, { recursive: true });
  const marker = path.join(layout.root, ROOT_MARKER);
  const entries = await fs.readdir(layout.root);
  const foreign = entries.filter((e) => !['servers', 'dovecot', 'secrets', ROOT_MARKER].includes(e));
  if (!entries.includes(ROOT_MARKER) && foreign.length > 0 && !opts.force) {
    throw new Error(`host root ${layout.root} is not empty and not a reference host; refusing to seed it (use --force)`);
  }
  await fs.writeFile(marker, 'bm-dataprotect reference host\n');
  for (const dir of [layout.spool, layout.archive, layout.filehosting, layout.conf(CORE_SERVER), layout.conf(MAIL_SERVER)]) {
    await rmChecked(layout, dir);
    await fs.mkdir(dir, { recursive: true });
  }

  let seq = 0;
  let total = 0;
  for (const [mi, mb] of mailboxes.entries()) {
    const root = path.join(layout.spool, mb.domain, mb.name);
    const folderDirs = new Map<string, string>();
    for (const f of FOLDERS) {
      const dir = f === 'INBOX' ? root : path.join(root, '.' + f.replace(/\//g, '.'));
      folderDirs.set(f, dir);
      for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(dir, sub), { recursive: true });
    }
    await fs.writeFile(path.join(root, 'subscriptions'), FOLDERS.filter((f) => f !== 'INBOX').join('\n') + '\n');
    const peers = mailboxes.filter((x) => x.domain === mb.domain && x.uid !== mb.uid);
    for (let n = 0; n < perMailbox; n++) {
      const folder = n < perMailbox / 2 ? 'INBOX' : FOLDERS[1 + ((n + mi) % (FOLDERS.length - 1))];
      const peer = peers.length ? rng.pick(peers) : mb;
      const outgoing = folder === 'Sent';
      const date = new Date(BASE_TIME - rng.int(0, 120) * DAY - rng.int(0, 86_399) * 1000);
      const messageId = `${rng.hex(16)}.${n}@${mb.domain}`;
      const raw = buildMessage({
        from: outgoing ? `"${mb.displayName}" <${mb.email}>` : `"${peer.displayName}" <${peer.email}>`,
        to: [outgoing ? peer.email : mb.email],
        subject: `${rng.pick(['Re: ', 'Fwd: ', '', ''])}${sentence(rng, rng.int(3, 7)).slice(0, -1)}`,
        date, messageId,
        body: `Hello,\n\n${paragraph(rng, rng.int(2, 6))}\n\n${paragraph(rng, rng.int(1, 3))}\n\n-- \n${outgoing ? mb.displayName : peer.displayName}\n`,
        attachment: n % 3 === 2 ? attachmentFor(rng, n) : undefined,
      });
      const flags = folder === 'INBOX' && n % 4 === 0 ? '' : rng.pick(['S', 'S', 'S', 'FS', 'RS', 'S']);
      const sub = flags === '' && rng.chance(0.5) ? 'new' : 'cur';
      const name = sub === 'new' ? maildirName(date, ++seq, raw.length, '').replace(/:2,$/, '') : maildirName(date, ++seq, raw.length, flags);
      const file = path.join(folderDirs.get(folder)!, sub, name);
      await fs.writeFile(file, raw);
      // Dovecot takes a Maildir message's internal date from its mtime.
      await fs.utimes(file, date, date);
      total++;
    }
    // Archived mail (BlueMind's HSM spool) for some users.
    if (mb.kind === 'user' && mi % 5 === 0) {
      const dir = path.join(layout.archive, 'user', mb.domain, mb.uid);
      await fs.mkdir(dir, { recursive: true });
      for (let a = 0; a < 2; a++) {
        const date = new Date(BASE_TIME - (400 + a * 30) * DAY);
        const raw = buildMessage({
          from: `<archive@${mb.domain}>`, to: [mb.email], subject: `Archived: ${sentence(rng, 4).slice(0, -1)}`, date,
          messageId: `${rng.hex(16)}.archived@${mb.domain}`, body: paragraph(rng, 5),
        });
        const file = path.join(dir, `${rng.hex(40)}.eml`);
        await fs.writeFile(file, raw);
        await fs.utimes(file, date, date);
      }
    }
    // File hosting (attachments shared as links) for some users.
    if (mb.kind === 'user' && mi % 8 === 0) {
      const dir = path.join(layout.filehosting, mb.domain, mb.uid);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${rng.hex(32)}.bin`), rng.bytes(rng.int(10_000, 60_000)));
    }
  }
  await writeConf(layout, opts.connection, opts.installationId);
  return total;
}

async function writeConf(layout: HostLayout, s: ConnectionSettings, installationId: string): Promise<void> {
  const put = async (server: string, rel: string, text: string, mode = 0o644) => {
    const file = path.join(layout.conf(server), rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, text, { mode });
  };
  // bm.ini holds the database credentials on a real BlueMind: it is part of bm/conf, readable by root only.
  const ini = (host: string) =>
    `[global]\nhost = ${host}\ndbtype = PGSQL\ndb = ${s.database}\nuser = ${s.user}\n` +
    (s.password ? `password = ${s.password}\n` : '') + `hz-member-address = ${host}\n`;
  await put(CORE_SERVER, 'etc/bm/bm.ini', ini('127.0.0.1'), 0o600);
  await put(CORE_SERVER, 'etc/bm/mcast.id', installationId + '\n');
  await put(CORE_SERVER, 'etc/bm-node/rsync.excludes', '*.tmp\n*/tmp/*\n');
  await put(CORE_SERVER, 'etc/postgresql/15/main/postgresql.conf', "listen_addresses = '127.0.0.1'\nmax_connections = 200\nshared_buffers = 512MB\n");
  await put(MAIL_SERVER, 'etc/bm/bm.ini', ini('127.0.0.1'), 0o600);
  await put(MAIL_SERVER, 'etc/bm/mcast.id', installationId + '\n');
  await put(MAIL_SERVER, 'etc/dovecot/conf.d/10-mail.conf', 'mail_location = maildir:/var/spool/bm-mail/%d/%n\n');
}
