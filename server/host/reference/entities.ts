// Reads the directory and the per-entity containers from BlueMind's tables, inside a given snapshot. The export
// of a container is lossless: every column of every row, as PostgreSQL's row_to_json renders it, with NULL
// columns left out (json_populate_record reads a missing key as NULL), so the rows can be put back exactly (see
// writers.ts) and rendered as ICS / VCF (see render.ts).

import type { ContainerType, DirectoryEntity, EntityContainer, EntityDataReader, EntityKind, SnapshotQuery } from '../port.js';

const ENTITY_KINDS: EntityKind[] = ['DOMAIN', 'USER', 'MAILSHARE', 'RESOURCE', 'GROUP', 'ORG_UNIT'];

/** Item tables per container type; `many` when an item has several rows (a series and its exceptions). */
export const ITEM_TABLES: Record<ContainerType, { key: string; table: string; many: boolean; order?: string }> = {
  calendar: { key: 'vevent', table: 't_calendar_vevent', many: true, order: 'recurid_timestamp NULLS FIRST, dtstart_timestamp' },
  addressbook: { key: 'vcard', table: 't_addressbook_vcard', many: false },
  todolist: { key: 'vtodo', table: 't_todolist_vtodo', many: false },
};

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

/** Directory entities of every domain (or one), with their OU paths. Works on the live database too. */
export async function readDirectory(q: SnapshotQuery, domainUid?: string): Promise<DirectoryEntity[]> {
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
      WHERE ($1::text IS NULL OR c.uid = $1)
      ORDER BY c.uid, e.kind, e.entry_uid`,
    [domainUid ?? null],
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

export const referenceEntityData: EntityDataReader = {
  owners: (q) => readDirectory(q),

  async containers(q, owner) {
    const rows = await q.query<{ uid: string; type: ContainerType; name: string; owner: string; domain_uid: string; n: string }>(
      `SELECT c.uid, c.container_type AS type, c.name, c.owner, c.domain_uid,
              (SELECT count(*) FROM t_container_item i WHERE i.container_id = c.id) AS n
         FROM t_container c
        WHERE c.owner = $1 AND c.domain_uid = $2 AND c.container_type IN ('calendar', 'addressbook', 'todolist')
        ORDER BY c.uid`,
      [owner.uid, owner.domainUid],
    );
    return rows.map((r): EntityContainer => ({ uid: r.uid, type: r.type, name: r.name, owner: r.owner, domainUid: r.domain_uid, itemCount: Number(r.n) }));
  },

  async *exportAll(q) {
    const heads = await q.query<{ id: number; uid: string; type: ContainerType; name: string; owner: string; domain_uid: string; c: unknown; acl: unknown }>(
      `SELECT c.id, c.uid, c.container_type AS type, c.name, c.owner, c.domain_uid, row_to_json(c) AS c,
              COALESCE((SELECT json_agg(json_build_object('subject', a.subject, 'verb', a.verb, 'position', a.position)
                                 ORDER BY a.position, a.subject, a.verb)
                          FROM t_container_acl a WHERE a.container_id = c.id), '[]'::json) AS acl
         FROM t_container c WHERE c.container_type IN ('calendar', 'addressbook', 'todolist') ORDER BY c.id`,
    );
    // One cursor over the items of every container, by container id, then item uid as in exportContainer.
    const parts = (Object.keys(ITEM_TABLES) as ContainerType[]).map((type) => {
      const t = ITEM_TABLES[type];
      const rows = t.many
        ? `(SELECT json_agg(json_strip_nulls(row_to_json(r)) ORDER BY ${t.order}) FROM ${t.table} r WHERE r.item_id = i.id)`
        : `(SELECT json_strip_nulls(row_to_json(r)) FROM ${t.table} r WHERE r.item_id = i.id)`;
      const series = type === 'calendar' ? `(SELECT row_to_json(s) FROM t_calendar_series s WHERE s.item_id = i.id)` : 'NULL::json';
      return `SELECT c.id AS cid, i.uid AS iuid, json_strip_nulls(row_to_json(i)) AS item, ${rows} AS rows, ${series} AS series
                FROM t_container c JOIN t_container_item i ON i.container_id = c.id WHERE c.container_type = '${type}'`;
    });
    const items = q.stream(`${parts.join(' UNION ALL ')} ORDER BY cid, iuid`)[Symbol.asyncIterator]();
    let next = await items.next();
    for (const h of heads) {
      const t = ITEM_TABLES[h.type];
      const lines = [JSON.stringify({ container: h.c, acl: h.acl })];
      if (!next.done && Number(next.value.cid) < h.id) throw new Error(`item ${String(next.value.iuid)} of container ${String(next.value.cid)} has no container row`);
      while (!next.done && Number(next.value.cid) === h.id) {
        const r = next.value;
        const line: Record<string, unknown> = { item: r.item, [t.key]: r.rows };
        if (h.type === 'calendar' && r.series) line.series = r.series;
        lines.push(JSON.stringify(line));
        next = await items.next();
      }
      yield {
        container: { uid: h.uid, type: h.type, name: h.name, owner: h.owner, domainUid: h.domain_uid, itemCount: lines.length - 1 },
        lines,
      };
    }
    if (!next.done) throw new Error(`item ${String(next.value.iuid)} of container ${String(next.value.cid)} has no container row`);
  },

  async *exportContainer(q, container) {
    const head = await q.query<{ c: unknown; acl: unknown }>(
      `SELECT row_to_json(c) AS c,
              COALESCE((SELECT json_agg(json_build_object('subject', a.subject, 'verb', a.verb, 'position', a.position)
                                 ORDER BY a.position, a.subject, a.verb)
                          FROM t_container_acl a WHERE a.container_id = c.id), '[]'::json) AS acl
         FROM t_container c WHERE c.uid = $1`,
      [container.uid],
    );
    if (head.length === 0) throw new Error(`container ${container.uid} not found`);
    yield JSON.stringify({ container: head[0].c, acl: head[0].acl });
    const t = ITEM_TABLES[container.type];
    const rows = t.many
      ? `(SELECT json_agg(json_strip_nulls(row_to_json(r)) ORDER BY ${t.order}) FROM ${t.table} r WHERE r.item_id = i.id)`
      : `(SELECT json_strip_nulls(row_to_json(r)) FROM ${t.table} r WHERE r.item_id = i.id)`;
    const series = container.type === 'calendar' ? `, (SELECT row_to_json(s) FROM t_calendar_series s WHERE s.item_id = i.id) AS series` : '';
    const sql = `SELECT json_strip_nulls(row_to_json(i)) AS item, ${rows} AS rows${series}
                   FROM t_container_item i JOIN t_container c ON c.id = i.container_id
                  WHERE c.uid = $1 ORDER BY i.uid`;
    for await (const r of q.stream(sql, [container.uid])) {
      const line: Record<string, unknown> = { item: r.item, [t.key]: r.rows };
      if (container.type === 'calendar' && r.series) line.series = r.series;
      yield JSON.stringify(line);
    }
  },
};
