// The plugin's tables of generations: a cache of the repository's own records (format.ts), keyed by repository
// location. "Sync with the repository" rebuilds it from the repository alone.

import { inject, injectable } from 'tsyringe';
import type { Pool } from '../../pg/client.js';
import { POOL } from '../../store/tokens.js';
import type { GenerationRecord } from './format.js';

@injectable()
export class GenerationCache {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  /** The repository's snapshot-name fingerprint at the last sync; null when never synced. */
  async fingerprint(repository: string): Promise<string | null> {
    const r = await this.pool.query<{ fingerprint: string | null }>('SELECT fingerprint FROM dp_generation_sync WHERE repository = $1', [repository]);
    return r.rowCount ? (r.rows[0].fingerprint ?? '') : null;
  }

  /** The fingerprint (as `fingerprint`) and the records (as `list`) in one statement; null when never synced. */
  async read(repository: string): Promise<{ fingerprint: string; records: GenerationRecord[] } | null> {
    const r = await this.pool.query<{ fingerprint: string | null; record: GenerationRecord | null }>(
      `SELECT s.fingerprint, g.record FROM dp_generation_sync s LEFT JOIN dp_generation g ON g.repository = s.repository
        WHERE s.repository = $1 ORDER BY g.protection_time DESC, g.id DESC`,
      [repository],
    );
    if (r.rowCount === 0) return null;
    return { fingerprint: r.rows[0].fingerprint ?? '', records: r.rows.flatMap((x) => (x.record ? [x.record] : [])) };
  }

  /** Newest first; null when this repository was never synced into the cache. */
  async list(repository: string): Promise<GenerationRecord[] | null> {
    const synced = await this.pool.query('SELECT 1 FROM dp_generation_sync WHERE repository = $1', [repository]);
    if (synced.rowCount === 0) return null;
    const r = await this.pool.query<{ record: GenerationRecord }>(
      'SELECT record FROM dp_generation WHERE repository = $1 ORDER BY protection_time DESC, id DESC',
      [repository],
    );
    return r.rows.map((x) => x.record);
  }

  async get(repository: string, id: string): Promise<GenerationRecord | null> {
    const r = await this.pool.query<{ record: GenerationRecord }>('SELECT record FROM dp_generation WHERE repository = $1 AND id = $2', [repository, id]);
    return r.rows[0]?.record ?? null;
  }

  async upsert(repository: string, g: GenerationRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO dp_generation (repository, id, protection_time, record) VALUES ($1, $2, $3, $4)
       ON CONFLICT (repository, id) DO UPDATE SET protection_time = EXCLUDED.protection_time, record = EXCLUDED.record`,
      [repository, g.id, g.protectionTime, JSON.stringify(g)],
    );
  }

  async remove(repository: string, ids: readonly string[]): Promise<void> {
    if (ids.length) await this.pool.query('DELETE FROM dp_generation WHERE repository = $1 AND id = ANY($2)', [repository, [...ids]]);
  }

  /** Replaces the whole cache of a repository, in one transaction. */
  async replace(repository: string, gens: readonly GenerationRecord[], fingerprint: string | null = null): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      // Two readers can find the cache stale at once (the console's poll and a script): the second waits for the
      // first instead of failing on a duplicate id.
      await c.query("SELECT pg_advisory_xact_lock(hashtext('dp_generation_sync'), hashtext($1))", [repository]);
      await c.query('DELETE FROM dp_generation WHERE repository = $1', [repository]);
      for (const g of gens) {
        await c.query('INSERT INTO dp_generation (repository, id, protection_time, record) VALUES ($1, $2, $3, $4)', [repository, g.id, g.protectionTime, JSON.stringify(g)]);
      }
      await c.query(
        `INSERT INTO dp_generation_sync (repository, synced_at, fingerprint) VALUES ($1, now(), $2)
         ON CONFLICT (repository) DO UPDATE SET synced_at = now(), fingerprint = EXCLUDED.fingerprint`,
        [repository, fingerprint],
      );
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }
}
