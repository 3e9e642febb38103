import { inject, injectable } from 'tsyringe';
import type { Pool } from '../pg/client.js';
import type { TaskKind, TaskStatus } from './task-record.js';
import { POOL } from './tokens.js';

export interface TaskStat {
  kind: TaskKind;
  status: TaskStatus;
  count: number;
  /** Of the ended tasks: the sum and the longest of their durations. */
  durationSeconds: number;
  maxDurationSeconds: number;
}

/** Counts and durations of the task history, by kind and status: what the metrics report. */
@injectable()
export class TaskStats {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  async byKindAndStatus(): Promise<TaskStat[]> {
    const r = await this.pool.query<{ kind: TaskKind; status: TaskStatus; n: number; seconds: number; max: number }>(
      `SELECT kind, status, count(*)::int AS n,
              coalesce(sum(extract(epoch FROM ended_at - created_at)), 0)::float8 AS seconds,
              coalesce(max(extract(epoch FROM ended_at - created_at)), 0)::float8 AS max
         FROM dp_task GROUP BY kind, status ORDER BY kind, status`,
    );
    return r.rows.map((x) => ({ kind: x.kind, status: x.status, count: x.n, durationSeconds: x.seconds, maxDurationSeconds: x.max }));
  }
}
