import { execFileSync, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgToolEnv } from '../../server/pg/settings.js';
import { createDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { DumpRowOrder, keyColumn } from '../../server/sources/pgdump-order.js';
import { tableFingerprints } from '../../server/sources/pgsql-manifest.js';
import { sandbox, type Sandbox } from '../host/helpers.js';

let sb: Sandbox;
let dump: Buffer;

async function transform(input: Buffer, piece = 65536, maxTableBytes?: number): Promise<{ out: Buffer; stats: DumpRowOrder['stats'] }> {
  const t = new DumpRowOrder(maxTableBytes);
  const parts: Buffer[] = [];
  const pieces = [];
  for (let i = 0; i < input.length; i += piece) pieces.push(input.subarray(i, i + piece));
  for await (const b of Readable.from(pieces).pipe(t)) parts.push(b as Buffer);
  return { out: Buffer.concat(parts), stats: t.stats };
}

beforeAll(async () => {
  sb = await sandbox('order');
  await createDatabase(sb.db, sb.db.database);
  await withClient(sb.db, async (c) => {
    await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, label text, note text);
                   CREATE TABLE rows_of_items (summary text, item_id bigint, tags text[]);
                   CREATE TABLE plain (v text);
                   CREATE TABLE empty_one (x int);`);
    // Inserted out of order, then updated: the heap order is neither the key order nor the insert order.
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 3000);
    await c.query(`INSERT INTO items SELECT g, 'label ' || g, CASE WHEN g % 3 = 0 THEN E'tab\\there\\nnewline' END FROM unnest($1::bigint[]) g`, [ids]);
    await c.query(`INSERT INTO rows_of_items SELECT 'sum ' || g, g % 500, ARRAY['a', 'b'] FROM unnest($1::bigint[]) g`, [ids]);
    await c.query(`UPDATE items SET label = label || ' (edited)' WHERE id % 50 = 0`);
    await c.query(`INSERT INTO plain SELECT md5(g::text) FROM generate_series(1, 500) g`);
  });
  dump = execFileSync('pg_dump', ['--format=custom', '--compress=0', '--no-password'], { env: pgToolEnv(sb.db), maxBuffer: 1 << 28 });
});
afterAll(async () => sb?.cleanup());

describe('pg_dump row order', () => {
  it('picks item_id, then id, as the sort key', () => {
    expect(keyColumn('COPY public.t_calendar_vevent (dtstart_timestamp, summary, item_id) FROM stdin;\n')).toBe(2);
    expect(keyColumn('COPY public.items (id, label) FROM stdin;\n')).toBe(0);
    expect(keyColumn('COPY public.plain (v) FROM stdin;\n')).toBe(-1);
  });

  it('puts every table in key order, keeps the archive size, and restores to the same tables', async () => {
    const { out, stats } = await transform(dump);
    expect(stats.passthrough).toBeUndefined();
    expect(stats.tablesSorted).toBe(4); // empty_one too: a block with only the terminator
    expect(out.length).toBe(dump.length);
    expect(out.equals(dump)).toBe(false);

    // As SQL, the restored data comes in key order.
    const sql = spawnSync('pg_restore', ['--data-only', '--file=-'], { input: out, maxBuffer: 1 << 28 }).stdout.toString();
    const section = (table: string) => sql.split(`COPY public.${table} `)[1].split('\\.\n')[0].split('\n').slice(1, -1);
    const itemIds = section('items').map((l) => Number(l.split('\t')[0]));
    expect(itemIds).toEqual([...itemIds].sort((a, b) => a - b));
    expect(itemIds.length).toBe(3000);
    const rowKeys = section('rows_of_items').map((l) => Number(l.split('\t')[1]));
    expect(rowKeys).toEqual([...rowKeys].sort((a, b) => a - b));
    const plain = section('plain');
    expect(plain).toEqual([...plain].sort());

    const target = sb.extraDb('order_restored');
    await createDatabase(target, target.database);
    const r = spawnSync('pg_restore', ['--exit-on-error', '--single-transaction', `--dbname=${target.database}`], { input: out, env: pgToolEnv(target) });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(await withClient(target, tableFingerprints)).toEqual(await withClient(sb.db, tableFingerprints));
  });

  it('with groups, orders rows by group and says where each group lies; the archive still restores', async () => {
    // rows_of_items by its item's group (item_id % 7, as an item's container); items by their own id's last digit.
    const via = new Map(Array.from({ length: 500 }, (_, i) => [String(i), String(i % 7)]));
    const groups = new Map([['public.rows_of_items', { column: 'item_id', via }], ['public.items', { column: 'id' }]]);
    const t = new DumpRowOrder(undefined, groups);
    const parts: Buffer[] = [];
    for await (const b of Readable.from([dump]).pipe(t)) parts.push(b as Buffer);
    const out = Buffer.concat(parts);
    expect(out.length).toBe(dump.length);
    expect(t.ungrouped).toEqual([]);
    const rowsAt = ([start, length]: [number, number]) => {
      const rows: string[] = [];
      for (let at = start; at < start + length; ) {
        const len = out.readUInt32LE(at + 1);
        rows.push(out.toString('utf8', at + 1 + t.integerSize, at + 1 + t.integerSize + len - 1));
        at += 1 + t.integerSize + len;
      }
      return rows;
    };
    const ranges = t.ranges.get('public.rows_of_items')!;
    expect([...ranges.keys()].sort()).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    let total = 0;
    for (const [g, range] of ranges) {
      const rows = rowsAt(range);
      total += rows.length;
      expect(rows.every((r) => String(Number(r.split('\t')[1]) % 7) === g)).toBe(true);
      const keys = rows.map((r) => Number(r.split('\t')[1]));
      expect(keys).toEqual([...keys].sort((a, b) => a - b));
    }
    expect(total).toBe(3000);
    expect(rowsAt(t.ranges.get('public.items')!.get('42')!).map((r) => r.split('\t')[0])).toEqual(['42']);

    const target = sb.extraDb('grouped_restored');
    await createDatabase(target, target.database);
    const r = spawnSync('pg_restore', ['--exit-on-error', '--single-transaction', `--dbname=${target.database}`], { input: out, env: pgToolEnv(target) });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(await withClient(target, tableFingerprints)).toEqual(await withClient(sb.db, tableFingerprints));
  });

  it('gives the same bytes whatever the input pieces', async () => {
    const whole = (await transform(dump, dump.length)).out;
    expect((await transform(dump, 7)).out.equals(whole)).toBe(true);
    expect((await transform(dump, 1000)).out.equals(whole)).toBe(true);
  });

  it('passes through what it does not understand, unchanged', async () => {
    const junk = Buffer.from('not an archive at all, just bytes '.repeat(100));
    expect((await transform(junk, 10)).out.equals(junk)).toBe(true);
    const future = Buffer.from(dump);
    future[6] = 99; // archive version 1.99
    const r = await transform(future, 4096);
    expect(r.out.equals(future)).toBe(true);
    expect(r.stats.passthrough).toMatch(/version/);
    const truncated = dump.subarray(0, Math.floor(dump.length * 0.7));
    const t = await transform(truncated, 4096);
    expect(t.out.length).toBe(truncated.length);
  });

  it('leaves a table over the memory limit, and everything after it, as dumped, and the archive still restores', async () => {
    const { out, stats } = await transform(dump, 4096, 20_000);
    expect(stats.passthrough).toMatch(/larger than 20000 bytes/);
    expect(out.length).toBe(dump.length);
    const target = sb.extraDb('order_limit');
    await createDatabase(target, target.database);
    const r = spawnSync('pg_restore', ['--exit-on-error', '--single-transaction', `--dbname=${target.database}`], { input: out, env: pgToolEnv(target) });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(await withClient(target, tableFingerprints)).toEqual(await withClient(sb.db, tableFingerprints));
  });
});
