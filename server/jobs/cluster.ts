import { inject, injectable } from 'tsyringe';
import { withAdvisoryLock, type Locked } from '../pg/advisory-lock.js';
import type { Pool } from '../pg/client.js';
import { POOL } from '../store/tokens.js';
import { NODE_ID } from './tokens.js';

/**
 * Cluster-wide coordination through the shared PostgreSQL: exactly one node runs a given piece of work.
 * - withLock: a session advisory lock held on a dedicated connection for as long as the work runs; a node that
 *   dies releases it with its connection, so a crash never leaves the lock behind.
 * - claimScheduledRun: the first node to claim a job's day gets it; the schedule never runs twice in a day.
 * - claimSlot: the same for work scheduled several times a day (mail recovery points): one node per slot.
 */
@injectable()
export class ClusterCoordinator {
  constructor(
    @inject(POOL) private readonly pool: Pool,
    @inject(NODE_ID) private readonly node: string,
  ) {}

  async withLock<T>(name: string, work: () => Promise<T>): Promise<Locked<T>> {
    const client = await this.pool.connect();
    try {
      return await withAdvisoryLock(client, name, work);
    } finally {
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

  /**
   * True when this node got the run of `job` for the slot starting at `slot` (the interval's boundary). Claims
   * older than `keepMs` are deleted on the way, so the table stays small.
   */
  async claimSlot(job: string, slot: Date, keepMs = 7 * 86_400_000): Promise<boolean> {
    await this.pool.query('DELETE FROM dp_schedule_slot_claim WHERE job = $1 AND slot < $2', [job, new Date(slot.getTime() - keepMs)]);
    const r = await this.pool.query(
      'INSERT INTO dp_schedule_slot_claim (job, slot, node) VALUES ($1, $2, $3) ON CONFLICT (job, slot) DO NOTHING',
      [job, slot, this.node],
    );
    return (r.rowCount ?? 0) === 1;
  }

  /** Which node claimed a job's slot, if any. */
  async slotClaimedBy(job: string, slot: Date): Promise<string | null> {
    const r = await this.pool.query<{ node: string }>('SELECT node FROM dp_schedule_slot_claim WHERE job = $1 AND slot = $2', [job, slot]);
    return r.rows[0]?.node ?? null;
  }

  /** Which node claimed a job's day, if any. */
  async claimedBy(job: string, day: string): Promise<string | null> {
    const r = await this.pool.query<{ node: string }>('SELECT node FROM dp_schedule_claim WHERE job = $1 AND day = $2', [job, day]);
    return r.rows[0]?.node ?? null;
  }
}
