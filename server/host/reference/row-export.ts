// The reference host's exports derived from its dump's rows (RowExport): which rows of which table belong to a
// container, and a container's export lines (as entities.ts exports them) assembled from those rows.

import type { ContainerType, RowExport } from '../port.js';
import { exportColumns, ITEM_TABLES, TYPES_SQL, type Columns } from './entities.js';

/** Items beyond which the item → container map (about 100 bytes an item) is not built: exports are stored. */
export const MAX_DERIVED_ITEMS = 1_000_000;

export const referenceRowExport: RowExport = {
  async layout(q) {
    const [{ n }] = await q.query<{ n: string }>(
      `SELECT count(*) AS n FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.container_type IN (${TYPES_SQL})`,
    );
    if (Number(n) > MAX_DERIVED_ITEMS) return null;
    const cols = await exportColumns(q);
    const tables: Record<string, { column: string; byItem?: boolean }> = {
      'public.t_container': { column: 'id' },
      'public.t_container_acl': { column: 'container_id' },
      'public.t_container_item': { column: 'container_id' },
      'public.t_calendar_series': { column: 'item_id', byItem: true },
    };
    for (const t of Object.values(ITEM_TABLES)) if (cols[t.key]?.length) tables[`public.${t.table}`] = { column: 'item_id', byItem: true };
    const items = await q.query<{ id: string; cid: string }>(
      `SELECT i.id::text AS id, i.container_id::text AS cid FROM t_container_item i JOIN t_container c ON c.id = i.container_id
        WHERE c.container_type IN (${TYPES_SQL})`,
    );
    const itemContainer = new Map(items.map((r) => [r.id, r.cid]));
    const counts = new Map<string, number>();
    for (const r of items) counts.set(r.cid, (counts.get(r.cid) ?? 0) + 1);
    const heads = await q.query<{ id: string; uid: string; type: ContainerType; name: string; owner: string; domain_uid: string }>(
      `SELECT c.id::text AS id, c.uid, c.container_type AS type, c.name, c.owner, c.domain_uid FROM t_container c
        WHERE c.container_type IN (${TYPES_SQL}) ORDER BY c.id`,
    );
    const containers = heads.map((h) => ({
      id: h.id,
      container: { uid: h.uid, type: h.type, name: h.name, owner: h.owner, domainUid: h.domain_uid, itemCount: counts.get(h.id) ?? 0 },
    }));
    return { containers, tables, itemContainer };
  },

  lines(type, tables) {
    const t = (name: string) => tables[`public.${name}`] ?? { columns: [], rows: [] };
    const at = (x: { columns: string[] }, col: string) => x.columns.indexOf(col);
    const container = t('t_container');
    if (container.rows.length !== 1) throw new Error(`the dump holds ${container.rows.length} rows for one container`);
    const object = (cols: string[], row: string[]) => `{${cols.map((c, i) => `${JSON.stringify(c)}:${row[i]}`).join(',')}}`;
    const acl = t('t_container_acl');
    const [as, av, ap] = [at(acl, 'subject'), at(acl, 'verb'), at(acl, 'position')];
    const aclRows = acl.rows
      .map((r) => ({ subject: JSON.parse(r[as]) as string, verb: JSON.parse(r[av]) as string, position: JSON.parse(r[ap]) as number }))
      .sort((x, y) => x.position - y.position || (x.subject < y.subject ? -1 : x.subject > y.subject ? 1 : 0) || (x.verb < y.verb ? -1 : x.verb > y.verb ? 1 : 0));
    const spec = ITEM_TABLES[type];
    const item = t('t_container_item');
    const rowsOf = t(spec.table);
    const series = t('t_calendar_series');
    const columns: Columns = { item: item.columns, [spec.key]: rowsOf.columns, ...(type === 'calendar' ? { series: series.columns } : {}) };
    const lines = [`{"container":${object(container.columns, container.rows[0])},"acl":${JSON.stringify(aclRows)},"columns":${JSON.stringify(columns)}}`];
    const byItem = (x: { columns: string[]; rows: string[][] }) => {
      const m = new Map<string, string[][]>();
      const k = at(x, 'item_id');
      for (const r of x.rows) {
        const list = m.get(r[k]);
        if (list) list.push(r);
        else m.set(r[k], [r]);
      }
      return m;
    };
    const rowMap = byItem(rowsOf);
    const seriesMap = type === 'calendar' ? byItem(series) : new Map<string, string[][]>();
    const [iu, ii] = [at(item, 'uid'), at(item, 'id')];
    const uid = (r: string[]) => JSON.parse(r[iu]) as string;
    const sorted = [...item.rows].sort((x, y) => (uid(x) < uid(y) ? -1 : uid(x) > uid(y) ? 1 : 0));
    // A series and its exceptions as the export orders them: the master first, then by start.
    const [rr, rd] = [at(rowsOf, 'recurid_timestamp'), at(rowsOf, 'dtstart_timestamp')];
    const text = (v: string | undefined) => (v === undefined || v === 'null' ? null : (JSON.parse(v) as string));
    const byStart = (x: string[], y: string[]) => {
      const [a, b] = [text(x[rr]), text(y[rr])];
      if (a !== b) return a === null ? -1 : b === null ? 1 : a < b ? -1 : 1;
      const [c, d] = [text(x[rd]), text(y[rd])];
      if (c === d) return 0;
      return c === null ? 1 : d === null ? -1 : c < d ? -1 : 1;
    };
    for (const r of sorted) {
      const own = rowMap.get(r[ii]) ?? [];
      const rows = spec.many
        ? own.length ? `[${own.sort(byStart).map((x) => `[${x.join(',')}]`).join(',')}]` : 'null'
        : own.length ? `[${own[0].join(',')}]` : 'null';
      const s = seriesMap.get(r[ii]);
      lines.push(`{"item":[${r.join(',')}],"${spec.key}":${rows}${s ? `,"series":[${s[0].join(',')}]` : ''}}`);
    }
    return lines;
  },
};
