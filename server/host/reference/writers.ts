// Writers that put restored data back into the reference host: Maildir files, IMAP appends (as the master user),
// and container rows (a calendar, address book or todolist replaced from its lossless export).

import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImapFlow } from 'imapflow';
import type { ConnectionSettings } from '../../pg/settings.js';
import type { DatabaseWriter, ImapWriter, MailboxLocation, MailWriter } from '../port.js';
import { connect } from '../../pg/client.js';
import { insertRows } from '../../pg/insert-rows.js';
import { dovecotEndpoint, handSpoolToDovecot } from './dovecot.js';
import { decodeItem, ITEM_TABLES, type ExportHead } from './entities.js';
import type { HostLayout } from './layout.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from './seed.js';

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
  };
}

export async function imapWriter(layout: HostLayout): Promise<ImapWriter> {
  const endpoint = await dovecotEndpoint(layout);
  const pass = await imapAdminPassword(layout);
  const clients = new Map<string, ImapFlow>();
  const client = async (loc: MailboxLocation) => {
    let c = clients.get(loc.imapLogin);
    if (!c) {
      c = new ImapFlow({ host: endpoint.host, port: endpoint.port, secure: false, logger: false, auth: { user: `${loc.imapLogin}*${IMAP_ADMIN_USER}`, pass } });
      await c.connect();
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
    async close() {
      for (const c of clients.values()) await c.logout().catch(() => {});
      clients.clear();
    },
  };
}

type Row = Record<string, unknown>;

/** Replaces a container's items with an export's (ids are the live database's own; uids are kept). */
export function databaseWriter(settings: ConnectionSettings): DatabaseWriter {
  return {
    async replaceContainer(lines: AsyncIterable<string>) {
      const rows: Row[] = [];
      for await (const chunk of lines) for (const line of chunk.split('\n')) if (line.trim()) rows.push(JSON.parse(line));
      const head = rows.shift() as ExportHead | undefined;
      if (!head?.container) throw new Error('export stream has no container line');
      const type = head.container.container_type as keyof typeof ITEM_TABLES;
      const t = ITEM_TABLES[type];
      if (!t) throw new Error(`cannot restore a container of type ${String(type)}`);
      const c = await connect(settings);
      try {
        await c.query('BEGIN');
        const found = await c.query<{ id: number }>('SELECT id FROM t_container WHERE uid = $1 FOR UPDATE', [head.container.uid]);
        let cid: number;
        if (found.rowCount) {
          cid = found.rows[0].id;
          await c.query('DELETE FROM t_container_item WHERE container_id = $1', [cid]);
          await c.query('DELETE FROM t_container_acl WHERE container_id = $1', [cid]);
        } else {
          const { id: _id, ...container } = head.container;
          void _id;
          const cols = Object.keys(container);
          const ins = await c.query<{ id: number }>(
            `INSERT INTO t_container (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM json_populate_record(NULL::t_container, $1::json) RETURNING id`,
            [JSON.stringify(container)],
          );
          cid = ins.rows[0].id;
        }
        await insertRows(c, 't_container_acl', head.acl.map((a) => ({ ...a, container_id: cid })));
        // Every column is written (a key missing from the export is a NULL, not the column's default).
        const columns = async (table: string) =>
          (await c.query<{ name: string }>(`SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [table])).rows.map((r) => r.name);
        const itemCols = (await columns('t_container_item')).filter((n) => n !== 'id' && n !== 'container_id');
        const rowCols = (await columns(t.table)).filter((n) => n !== 'item_id');
        const insertItem = `INSERT INTO t_container_item (${itemCols.join(', ')}, container_id)
                            SELECT ${itemCols.join(', ')}, $2 FROM json_populate_record(NULL::t_container_item, $1::json) RETURNING id`;
        const insertRow = `INSERT INTO ${t.table} (${rowCols.join(', ')}, item_id)
                           SELECT ${rowCols.map((n) => 'r.' + n).join(', ')}, $2 FROM json_populate_recordset(NULL::${t.table}, $1::json) r`;
        let items = 0;
        for (const line of rows) {
          const r = decodeItem(head, type, line);
          const ins = await c.query<{ id: string }>(insertItem, [JSON.stringify(r.item), cid]);
          const itemId = ins.rows[0].id;
          if (r.rows.length) await c.query(insertRow, [JSON.stringify(r.rows), itemId]);
          if (r.series) await insertRows(c, 't_calendar_series', [{ ...r.series, item_id: itemId }]);
          items++;
        }
        await c.query('COMMIT');
        return { items };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}
