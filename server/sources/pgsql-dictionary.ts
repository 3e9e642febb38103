// The dictionary the database dump's chunks are compressed with (the engine's "Dictionaries", FORMAT.md): rows
// sampled from every table in proportion to its size, read inside the backup's snapshot before pg_dump's first
// byte is stored. Rows are what the dump's table data is made of, so each small chunk of it finds most of its
// phrases (column values, JSON keys, time zones, uid shapes) in the dictionary: measured on the bench's
// database (test/bench/dictionary-measure.ts), the dump's 4 KiB chunks then take 0.6x what they take without one, and rows changed
// at scattered places, 4 KiB chunks compressed alone, cost about what they would in one long frame. Made once
// per database: the next generations reuse it (the engine keeps a stream's dictionary from its parent), so
// the table scan that sampling costs is paid by the first backup only.

import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/** Large enough to hold each table's typical rows, small enough for zstd to search at the level such blobs get (dictionaryLevel). */
export const DICTIONARY_BYTES = 1024 * 1024;

/**
 * About `bytes` of rows in COPY text form (pg_dump's own), each table's share in proportion to its size on
 * disk; the first `bytes` when the sample comes out larger. `c` is in the backup's snapshot.
 */
export async function sampleRows(c: pg.Client, bytes = DICTIONARY_BYTES): Promise<Buffer> {
  const tables = (
    await c.query<{ t: string; n: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_relation_size(c.oid) AS n
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
          AND pg_relation_size(c.oid) > 0 AND has_table_privilege(c.oid, 'SELECT')
        ORDER BY 2, 1`,
    )
  ).rows;
  const total = tables.reduce((a, r) => a + Number(r.n), 0);
  if (total === 0) return Buffer.alloc(0);
  const percent = Math.min(100, (100 * bytes) / total);
  const parts: Buffer[] = [];
  let got = 0;
  for (const { t } of tables) {
    // REPEATABLE: the same rows for the same table, so a dictionary made again (its blob lost) is likely the same.
    const stream = c.query(copyTo(`COPY (SELECT * FROM ${t} TABLESAMPLE BERNOULLI (${percent}) REPEATABLE (7)) TO STDOUT`));
    for await (const piece of stream as AsyncIterable<Buffer>) {
      parts.push(piece);
      got += piece.length;
    }
    if (got >= bytes) break;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}
