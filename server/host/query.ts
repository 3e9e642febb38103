// SnapshotQuery over a `pg` client: plain queries and cursor-streamed rows on the same connection (and so in
// the same transaction and snapshot).

import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import type { SnapshotQuery } from './port.js';

export function clientQuery(client: pg.ClientBase): SnapshotQuery {
  return {
    async query<R extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
      return (await client.query(sql, params)).rows as R[];
    },
    async *stream(sql: string, params: unknown[] = []) {
      const stream = client.query(new QueryStream(sql, params, { batchSize: 500 }));
      for await (const row of stream as AsyncIterable<Record<string, unknown>>) yield row;
    },
  };
}
