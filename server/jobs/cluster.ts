import { inject, injectable } from 'tsyringe';
import type { Pool } from '../store/db.js';
import { POOL } from '../store/tokens.js';
import { NODE_ID } from './tokens.js';

const LOCK_CLASS = 0x6470; // "dp": the first key of our advisory locks, the second is hashtext(name)

export type LockResult<T> = { acquired: true; value: T } | { acquired: false };

/**
 * Cluster-wide coordination through the shared PostgreSQL: exactly one node runs a given piece of work.
 * - withLock: a session advisory lock held on a dedicated connection for as long as the work runs; a node that
 *   dies releases it with its connection, so a crash never leaves the lock behind.
 * - claimScheduledRun: the first node to claim a job's day gets it; the schedule never runs twice in a day.
 */
@injectable()
export class ClusterCoordinator {
  constructor(
    @inject(POOL) private readonly pool: Pool,
    @inject(NODE_ID) private readonly node: string,
  ) {}

  async withLock<T>(name: string, work: () => Promise<T>): Promise<LockResult<T>> {
    const client = await this.pool.connect();
    let locked = false;
    try {
      const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, name]);
      locked = r.rows[0].ok;
      if (!locked) return { acquired: false };
      return { acquired: true, value: await work() };
    } finally {
      if (locked) await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, name]).catch(() => {});
      client.release();
    }
  }

  /** True when this node got the run of `job` for `day` (YYYY-MM-DD, the schedule's local day). */
  async claimScheduledRun(job: string, day: string): Promise<boolean> {
    const r = await this.pool.query(
      'INSERT INTO dp_schedule_claim (job, day, node) VALUES ($1, $2, $3) ON CONFLICT (job, day) DO NOTHING',
      [job, day, this.node],
    );
    return (r.rowCount ?? 0) === 1;
  }

  /** Which node claimed a job's day, if any. */
  async claimedBy(job: string, day: string): Promise<string | null> {
    const r = await this.pool.query<{ node: string }>('SELECT node FROM dp_schedule_claim WHERE job = $1 AND day = $2', [job, day]);
    return r.rows[0]?.node ?? null;
  }
}
