import type pg from 'pg';
import { quoteIdent } from './ident.js';

/**
 * Inserts rows (objects keyed by column) through json_populate_recordset: one round trip per batch, and
 * PostgreSQL converts JSON arrays and strings into the columns' types.
 */
export async function insertRows(c: pg.ClientBase, table: string, rows: Record<string, unknown>[], batch = 4000): Promise<void> {
  // Rows are grouped by their set of keys: a column a row leaves out keeps its DEFAULT instead of becoming NULL.
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) {
    const key = Object.keys(r).join(',');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  for (const [key, group] of groups) {
    const list = key.split(',').map(quoteIdent).join(', ');
    const sql = `INSERT INTO ${quoteIdent(table)} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::${quoteIdent(table)}, $1::json)`;
    for (let i = 0; i < group.length; i += batch) {
      await c.query(sql, [JSON.stringify(group.slice(i, i + batch))]);
    }
  }
}
