// Reads the directory and the per-entity containers from BlueMind's tables, inside a given snapshot. The export
// of a container is lossless: every column of every row as PostgreSQL renders it in JSON, rows as arrays in the
// order of the columns the first line lists, so the rows can be put back exactly (see container-writer.ts) and rendered as
// ICS / VCF (see render.ts); decodeItem turns a line back into objects.

import { CONTAINER_TYPES, type ContainerType, type DirectoryEntity, type EntityContainer, type EntityDataReader, type EntityKind, type SnapshotQuery } from '../port.js';

const ENTITY_KINDS: EntityKind[] = ['DOMAIN', 'USER', 'MAILSHARE', 'RESOURCE', 'GROUP', 'ORG_UNIT'];

/** Item tables per container type; `many` when an item has several rows (a series and its exceptions). */
export const ITEM_TABLES: Record<ContainerType, { key: string; table: string; many: boolean; order?: string }> = {
  calendar: { key: 'vevent', table: 't_calendar_vevent', many: true, order: 'recurid_timestamp NULLS FIRST, dtstart_timestamp' },
  addressbook: { key: 'vcard', table: 't_addressbook_vcard', many: false },
  todolist: { key: 'vtodo', table: 't_todolist_vtodo', many: false },
  notes: { key: 'vnote', table: 't_notes_vnote', many: false },
  webappdata: { key: 'webappdata', table: 't_webappdata', many: false },
};

/** The exported container types, as an SQL list. */
export const TYPES_SQL = CONTAINER_TYPES.map((t) => `'${t}'`).join(', ');

interface EntryRow extends Record<string, unknown> {
  uid: string;
  domain_uid: string;
  kind: string;
  name: string;
  displayname: string | null;
  email: string | null;
  archived: boolean;
  ou: string | null;
}

/**
 * Directory entities of every domain (or one; or one entity of it, by uid, read alone: looking one up on a
 * large directory must not read the others), with their OU paths. Works on the live database too.
 */
export async function readDirectory(q: SnapshotQuery, domainUid?: string, entityUid?: string): Promise<DirectoryEntity[]> {
  const ous = await q.query<{ item_id: string; name: string; parent_item_id: string | null }>('SELECT item_id::text, name, parent_item_id::text FROM t_directory_ou');
  const byId = new Map(ous.map((o) => [o.item_id, o]));
  const ouPath = (id: string | null): string[] => {
    const out: string[] = [];
    for (let cur = id ? byId.get(id) : undefined, guard = 0; cur && guard < 64; cur = cur.parent_item_id ? byId.get(cur.parent_item_id) : undefined, guard++) {
      out.unshift(cur.name);
    }
    return out;
  };
  const rows = await q.query<EntryRow>(
    `SELECT e.entry_uid AS uid, c.uid AS domain_uid, e.kind, COALESCE(u.login, m.name, g.name, o.name, e.entry_uid) AS name,
            e.displayname, e.email, e.flag_archived AS archived, e.orgunit_item_id::text AS ou
       FROM t_directory_entry e
       JOIN t_container_item i ON i.id = e.item_id
       JOIN t_container c ON c.id = i.container_id AND c.container_type = 'dir'
       LEFT JOIN t_domain_user u ON u.item_id = e.item_id
       LEFT JOIN t_mailbox m ON m.item_id = e.item_id
       LEFT JOIN t_group g ON g.item_id = e.item_id
       LEFT JOIN t_directory_ou o ON o.item_id = e.item_id
      WHERE ($1::text IS NULL OR c.uid = $1) AND ($2::text IS NULL OR e.entry_uid = $2)
      ORDER BY c.uid, e.kind, e.entry_uid`,
    [domainUid ?? null, entityUid ?? null],
  );
  return rows
    .filter((r) => (ENTITY_KINDS as string[]).includes(r.kind))
    .map((r) => ({
      uid: r.uid,
      domainUid: r.domain_uid,
      kind: r.kind as EntityKind,
      name: r.name,
      displayName: r.displayname ?? r.name,
      email: r.email,
      ouPath: ouPath(r.ou),
      archived: r.archived,
      deleted: false,
    }));
}

export type Columns = Record<string, string[]>;

/** Column names of the exported tables, in table order, keyed as the export lines name them. */
export async function exportColumns(q: SnapshotQuery): Promise<Columns> {
  const tables: Record<string, string> = { item: 't_container_item', series: 't_calendar_series' };
  for (const t of Object.values(ITEM_TABLES)) tables[t.key] = t.table;
  const out: Columns = {};
  for (const [key, table] of Object.entries(tables)) {
    const rows = await q.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [table],
    );
    out[key] = rows.map((r) => r.name);
  }
  return out;
}

/** A JSON array of a row's columns (json_build_array takes at most 100 arguments: longer rows are joined as jsonb). */
function arraySql(alias: string, cols: string[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cols.length; i += 90) parts.push(`json_build_array(${cols.slice(i, i + 90).map((c) => `${alias}."${c.replace(/"/g, '""')}"`).join(', ')})`);
  return parts.length === 1 ? parts[0] : `(${parts.map((p) => `${p}::jsonb`).join(' || ')})::json`;
}

const HEAD_SQL = `row_to_json(c)::text AS c,
    COALESCE((SELECT json_agg(json_build_object('subject', a.subject, 'verb', a.verb, 'position', a.position)
                     ORDER BY a.position, a.subject, a.verb)
              FROM t_container_acl a WHERE a.container_id = c.id), '[]'::json)::text AS acl`;

function headLine(type: ContainerType, r: { c: string; acl: string }, cols: Columns): string {
  const key = ITEM_TABLES[type].key;
  const columns: Columns = { item: cols.item, [key]: cols[key] ?? [], ...(type === 'calendar' ? { series: cols.series } : {}) };
  return `{"container":${r.c},"acl":${r.acl},"columns":${JSON.stringify(columns)}}`;
}

/**
 * Items with their rows as JSON arrays in the columns' order (the head line names the columns), built as text by
 * PostgreSQL: never parsed and re-serialised in Node, integers beyond 2^53 stay exact, and no column name is
 * repeated on every row.
 */
function itemsSql(cols: Columns): string {
  // A table the database lacks (a host older than notes or web-app data) has no columns and no branch.
  const branch = (type: ContainerType): string => {
    const t = ITEM_TABLES[type];
    const c = cols[t.key];
    if (!c?.length) return '';
    const rows = t.many
      ? `(SELECT json_agg(${arraySql('r', c)} ORDER BY ${t.order}) FROM ${t.table} r WHERE r.item_id = i.id)`
      : `(SELECT ${arraySql('r', c)} FROM ${t.table} r WHERE r.item_id = i.id)`;
    return `WHEN '${type}' THEN ${rows}::text`;
  };
  const branches = CONTAINER_TYPES.map(branch).filter(Boolean).join('\n      ');
  return `SELECT i.container_id AS cid, i.uid AS iuid, ${arraySql('i', cols.item)}::text AS item,
    ${branches ? `CASE c.container_type\n      ${branches}\n    END` : 'NULL::text'} AS rows,
    CASE WHEN c.container_type = 'calendar' THEN (SELECT ${arraySql('s', cols.series)} FROM t_calendar_series s WHERE s.item_id = i.id)::text END AS series
  FROM t_container_item i JOIN t_container c ON c.id = i.container_id`;
}

function itemLine(type: ContainerType, r: Record<string, unknown>): string {
  const series = type === 'calendar' && r.series ? `,"series":${r.series as string}` : '';
  return `{"item":${r.item as string},"${ITEM_TABLES[type].key}":${(r.rows as string | null) ?? 'null'}${series}}`;
}

/**
 * A user's directory rows, as directory-writer.ts puts them back: rows as `row_to_json` renders them (what
 * json_populate_record reads back exactly), groups and unit by uid (their ids differ in another database).
 * Every user, or ($1, $2) one entry of any kind. Joins of whole tables, not a subquery per user: 2000 users in
 * well under a second.
 */
const USER_RECORD_SQL = `WITH u AS (
    SELECT i.id, i.uid, c.uid AS domain_uid, row_to_json(i) AS item
      FROM t_container_item i JOIN t_container c ON c.id = i.container_id AND c.container_type = 'dir'
     WHERE CASE WHEN $1::text IS NULL THEN EXISTS (SELECT 1 FROM t_directory_entry e WHERE e.item_id = i.id AND e.kind = 'USER')
                ELSE c.uid = $1 AND i.uid = $2 END),
  mb AS (SELECT m.item_id, json_agg(row_to_json(m)) AS j FROM t_mailbox m JOIN u ON u.id = m.item_id GROUP BY m.item_id),
  em AS (SELECT m.item_id, json_agg(row_to_json(m)) AS j FROM t_mailbox_email m JOIN u ON u.id = m.item_id GROUP BY m.item_id),
  gr AS (SELECT gm.user_id, json_agg(gi.uid ORDER BY gi.uid) AS j
           FROM t_group_usermember gm JOIN u ON u.id = gm.user_id JOIN t_container_item gi ON gi.id = gm.group_id GROUP BY gm.user_id),
  acl AS (SELECT a.container_id, json_agg(json_build_object('subject', a.subject, 'verb', a.verb, 'position', a.position)
                                         ORDER BY a.position, a.subject, a.verb) AS j
            FROM t_container_acl a JOIN t_container ct ON ct.id = a.container_id AND ct.container_type = 'mailboxacl' GROUP BY a.container_id),
  ac AS (SELECT u.id, json_agg(json_build_object('container', row_to_json(ct), 'acl', COALESCE(acl.j, '[]')) ORDER BY ct.uid) AS j
           FROM u JOIN t_container ct ON ct.owner = u.uid AND ct.domain_uid = u.domain_uid AND ct.container_type = 'mailboxacl'
           LEFT JOIN acl ON acl.container_id = ct.id GROUP BY u.id)
SELECT u.domain_uid, u.uid, json_build_object(
    'item', u.item,
    'entry', CASE WHEN e.item_id IS NULL THEN NULL ELSE row_to_json(e) END,
    'user', CASE WHEN du.item_id IS NULL THEN NULL ELSE row_to_json(du) END,
    'mailbox', COALESCE(mb.j, '[]'), 'emails', COALESCE(em.j, '[]'), 'groups', COALESCE(gr.j, '[]'),
    'ou', oi.uid, 'aclContainers', COALESCE(ac.j, '[]')
  )::text AS record
  FROM u LEFT JOIN t_directory_entry e ON e.item_id = u.id LEFT JOIN t_domain_user du ON du.item_id = u.id
  LEFT JOIN t_container_item oi ON oi.id = e.orgunit_item_id
  LEFT JOIN mb ON mb.item_id = u.id LEFT JOIN em ON em.item_id = u.id LEFT JOIN gr ON gr.user_id = u.id LEFT JOIN ac ON ac.id = u.id`;

type Row = Record<string, unknown>;

/** The first line of an export. `columns` is absent in exports whose rows are objects. */
export interface ExportHead {
  container: Row;
  acl: { subject: string; verb: string; position: number }[];
  columns?: Columns;
}

/** One item of an export with its rows as objects (a column missing from an object row is NULL). */
export function decodeItem(head: ExportHead, type: ContainerType, line: Row): { item: Row; rows: Row[]; series: Row | null } {
  const key = ITEM_TABLES[type].key;
  const obj = (v: unknown, k: string): Row => {
    if (!Array.isArray(v)) return v as Row;
    const cols = head.columns?.[k];
    if (!cols || cols.length !== v.length) throw new Error(`export row of ${k} does not match its ${cols?.length ?? 0} columns`);
    return Object.fromEntries(cols.map((c, i) => [c, v[i]]));
  };
  const raw = line[key];
  const rows = ITEM_TABLES[type].many ? ((raw as unknown[] | null) ?? []).map((r) => obj(r, key)) : raw ? [obj(raw, key)] : [];
  return { item: obj(line.item, 'item'), rows, series: line.series ? obj(line.series, 'series') : null };
}

export const referenceEntityData: EntityDataReader = {
  owners: (q) => readDirectory(q),

  async containers(q, owner) {
    const rows = await q.query<{ uid: string; type: ContainerType; name: string; owner: string; domain_uid: string; n: string }>(
      `SELECT c.uid, c.container_type AS type, c.name, c.owner, c.domain_uid,
              (SELECT count(*) FROM t_container_item i WHERE i.container_id = c.id) AS n
         FROM t_container c
        WHERE c.owner = $1 AND c.domain_uid = $2 AND c.container_type IN (${TYPES_SQL})
        ORDER BY c.uid`,
      [owner.uid, owner.domainUid],
    );
    return rows.map((r): EntityContainer => ({ uid: r.uid, type: r.type, name: r.name, owner: r.owner, domainUid: r.domain_uid, itemCount: Number(r.n) }));
  },

  async *exportAll(q) {
    const cols = await exportColumns(q);
    const heads = await q.query<{ id: number; uid: string; type: ContainerType; name: string; owner: string; domain_uid: string; c: string; acl: string }>(
      `SELECT c.id, c.uid, c.container_type AS type, c.name, c.owner, c.domain_uid, ${HEAD_SQL}
         FROM t_container c WHERE c.container_type IN (${TYPES_SQL}) ORDER BY c.id`,
    );
    // One cursor over the items of every container, in (container id, item uid) order: the unique index's order.
    const items = q.stream(`${itemsSql(cols)} WHERE c.container_type IN (${TYPES_SQL}) ORDER BY i.container_id, i.uid`)[Symbol.asyncIterator]();
    let next = await items.next();
    for (const h of heads) {
      const lines = [headLine(h.type, h, cols)];
      if (!next.done && Number(next.value.cid) < h.id) throw new Error(`item ${String(next.value.iuid)} of container ${String(next.value.cid)} has no container row`);
      while (!next.done && Number(next.value.cid) === h.id) {
        lines.push(itemLine(h.type, next.value));
        next = await items.next();
      }
      yield {
        container: { uid: h.uid, type: h.type, name: h.name, owner: h.owner, domainUid: h.domain_uid, itemCount: lines.length - 1 },
        lines,
      };
    }
    if (!next.done) throw new Error(`item ${String(next.value.iuid)} of container ${String(next.value.cid)} has no container row`);
  },

  async itemUids(q, containerUid) {
    const rows = await q.query<{ uid: string }>(
      `SELECT i.uid FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`,
      [containerUid],
    );
    return rows.map((r) => r.uid);
  },

  async *userRecords(q, only) {
    const rows = q.stream(`${USER_RECORD_SQL} ORDER BY u.domain_uid, u.uid`, [only?.domainUid ?? null, only?.uid ?? null]);
    for await (const r of rows) yield { domainUid: r.domain_uid as string, uid: r.uid as string, record: r.record as string };
  },

  async *exportContainer(q, container) {
    const cols = await exportColumns(q);
    const head = await q.query<{ c: string; acl: string }>(`SELECT ${HEAD_SQL} FROM t_container c WHERE c.uid = $1`, [container.uid]);
    if (head.length === 0) throw new Error(`container ${container.uid} not found`);
    yield headLine(container.type, head[0], cols);
    for await (const r of q.stream(`${itemsSql(cols)} WHERE c.uid = $1 ORDER BY i.container_id, i.uid`, [container.uid])) {
      yield itemLine(container.type, r);
    }
  },
};
