// A calendar, address book, todolist, notes or web-app data container put back into the reference host's
// database from its lossless export: the whole container replaced, or some of its items replaced or added where
// missing.

import type { ConnectionSettings } from '../../pg/settings.js';
import type { ContainerCopy, ContainerRestoreOptions, DatabaseWriter } from '../port.js';
import { connect } from '../../pg/client.js';
import { insertRows } from '../../pg/insert-rows.js';
import { decodeItem, ITEM_TABLES, type ExportHead } from './entities.js';

type Row = Record<string, unknown>;

async function readExport(lines: AsyncIterable<string>): Promise<{ head: ExportHead; rows: Row[] }> {
  const rows: Row[] = [];
  for await (const chunk of lines) for (const line of chunk.split('\n')) if (line.trim()) rows.push(JSON.parse(line));
  const head = rows.shift() as ExportHead | undefined;
  if (!head?.container) throw new Error('export stream has no container line');
  return { head, rows };
}

/** Puts a container's items back from an export (ids are the live database's own; uids are kept). */
export function databaseWriter(settings: ConnectionSettings): DatabaseWriter {
  async function restoreContainer(lines: AsyncIterable<string>, options: ContainerRestoreOptions) {
    const { head, rows } = await readExport(lines);
    const as = options.as;
    if (as) {
      // A copy: the saved container's settings under a new uid, name and owner; only the owner has access.
      head.container = { ...head.container, uid: as.uid, name: as.name, owner: as.owner, domain_uid: as.domainUid, defaultcontainer: false, readonly: false };
      head.acl = [{ subject: as.owner, verb: 'All', position: 0 }];
    }
    const type = head.container.container_type as keyof typeof ITEM_TABLES;
    const t = ITEM_TABLES[type];
    if (!t) throw new Error(`cannot restore a container of type ${String(type)}`);
    const wanted = options.items ? new Set(options.items) : null;
    const whole = options.mode === 'replace' && !wanted;
    const c = await connect(settings);
    try {
      await c.query('BEGIN');
      const found = await c.query<{ id: number }>('SELECT id FROM t_container WHERE uid = $1 FOR UPDATE', [head.container.uid]);
      let cid: number;
      let created = false;
      if (found.rowCount) {
        cid = found.rows[0].id;
        if (as) await c.query('UPDATE t_container SET name = $2, owner = $3 WHERE id = $1', [cid, as.name, as.owner]);
        if (whole) {
          await c.query('DELETE FROM t_container_item WHERE container_id = $1', [cid]);
          await c.query('DELETE FROM t_container_acl WHERE container_id = $1', [cid]);
        }
      } else {
        const { id: _id, ...container } = head.container;
        void _id;
        const cols = Object.keys(container);
        const ins = await c.query<{ id: number }>(
          `INSERT INTO t_container (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM json_populate_record(NULL::t_container, $1::json) RETURNING id`,
          [JSON.stringify(container)],
        );
        cid = ins.rows[0].id;
        created = true;
      }
      // Sharing comes back with the whole container, or with a container that had to be recreated.
      if (whole || created) await insertRows(c, 't_container_acl', head.acl.map((a) => ({ ...a, container_id: cid })));
      const live = new Set((await c.query<{ uid: string }>('SELECT uid FROM t_container_item WHERE container_id = $1', [cid])).rows.map((r) => r.uid));
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
      let skipped = 0;
      const seen = new Set<string>();
      for (const line of rows) {
        const r = decodeItem(head, type, line);
        const uid = String(r.item.uid);
        if (wanted && !wanted.has(uid)) continue;
        seen.add(uid);
        if (live.has(uid)) {
          if (options.mode === 'missing') {
            skipped++;
            continue;
          }
          await c.query('DELETE FROM t_container_item WHERE container_id = $1 AND uid = $2', [cid, uid]);
        }
        const ins = await c.query<{ id: string }>(insertItem, [JSON.stringify(r.item), cid]);
        const itemId = ins.rows[0].id;
        if (r.rows.length) await c.query(insertRow, [JSON.stringify(r.rows), itemId]);
        if (r.series) await insertRows(c, 't_calendar_series', [{ ...r.series, item_id: itemId }]);
        items++;
      }
      await c.query('COMMIT');
      return { items, skipped, absent: wanted ? [...wanted].filter((u) => !seen.has(u)) : [] };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      await c.end().catch(() => {});
    }
  }

  return {
    restoreContainer,
    async replaceContainer(lines, as?: ContainerCopy) {
      const r = await restoreContainer(lines, { mode: 'replace', as });
      return { items: r.items };
    },
  };
}
