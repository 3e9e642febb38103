import { inject, injectable } from 'tsyringe';
import type { Pool } from '../pg/client.js';
import { POOL } from './tokens.js';

export type AuditResult = 'ok' | 'failed' | 'cancelled' | 'started';

export interface AuditEventInput {
  actor: string;
  action: string;
  target?: string | null;
  generationId?: string | null;
  taskId?: string | null;
  result: AuditResult;
  detail?: Record<string, unknown> | null;
}

export interface AuditEvent {
  id: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  generationId: string | null;
  taskId: string | null;
  result: AuditResult;
  detail: Record<string, unknown> | null;
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  offset: number;
  limit: number;
}

interface Row {
  id: string;
  time: Date;
  actor: string;
  action: string;
  target: string | null;
  generation_id: string | null;
  task_id: string | null;
  result: AuditResult;
  detail: Record<string, unknown> | null;
}

@injectable()
export class AuditStore {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  async insert(e: AuditEventInput): Promise<AuditEvent> {
    const r = await this.pool.query<Row>(
      `INSERT INTO dp_audit (actor, action, target, generation_id, task_id, result, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [e.actor, e.action, e.target ?? null, e.generationId ?? null, e.taskId ?? null, e.result, e.detail ? JSON.stringify(e.detail) : null],
    );
    return toEvent(r.rows[0]);
  }

  async list(q: AuditQuery): Promise<{ total: number; offset: number; items: AuditEvent[] }> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.action) {
      args.push(q.action);
      where.push(`action = $${args.length}`);
    }
    if (q.actor) {
      args.push(q.actor);
      where.push(`actor = $${args.length}`);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM dp_audit ${clause}`, args);
    const rows = await this.pool.query<Row>(
      `SELECT * FROM dp_audit ${clause} ORDER BY id DESC OFFSET $${args.length + 1} LIMIT $${args.length + 2}`,
      [...args, q.offset, q.limit],
    );
    return { total: Number(total.rows[0].n), offset: q.offset, items: rows.rows.map(toEvent) };
  }
}

function toEvent(r: Row): AuditEvent {
  return {
    id: Number(r.id),
    time: r.time.toISOString(),
    actor: r.actor,
    action: r.action,
    target: r.target,
    generationId: r.generation_id,
    taskId: r.task_id,
    result: r.result,
    detail: r.detail,
  };
}
