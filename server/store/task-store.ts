import { inject, injectable } from 'tsyringe';
import type { Task, TaskFile, TaskKind, TaskLogEntry, TaskProgress, TaskStatus, LogLevel, Phrase } from './task-record.js';
import type { Pool } from '../pg/client.js';
import { POOL } from './tokens.js';

interface TaskRow {
  id: string;
  kind: TaskKind;
  title: string;
  title_phrase: Phrase | null;
  status: TaskStatus;
  actor: string;
  actor_uid: string | null;
  target: string | null;
  progress: TaskProgress;
  created_at: Date;
  ended_at: Date | null;
  error: string | null;
  error_phrase: Phrase | null;
  result: Record<string, unknown> | null;
  cancel_requested: boolean;
  node: string;
}

export interface TaskQuery {
  kind?: TaskKind;
  status?: TaskStatus;
  /** Only the tasks this user started. */
  actorUid?: string;
  offset: number;
  limit: number;
}

/** Task history in dp_task / dp_task_log: what any node of the cluster can read about any task. */
@injectable()
export class TaskStore {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  async insert(t: Task, node: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO dp_task (id, kind, title, title_phrase, status, actor, actor_uid, target, progress, created_at, node, heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())`,
      [t.id, t.kind, t.title, phraseJson(t.titlePhrase), t.status, t.actor, t.actorUid, t.target, JSON.stringify(t.progress), t.createdAt, node],
    );
  }

  /** Saves progress and reports whether someone asked (maybe on another node) to cancel. */
  async saveProgress(id: string, progress: TaskProgress): Promise<{ cancelRequested: boolean }> {
    const r = await this.pool.query<{ cancel_requested: boolean }>(
      `UPDATE dp_task SET progress = $2, heartbeat_at = now() WHERE id = $1 RETURNING cancel_requested`,
      [id, JSON.stringify(progress)],
    );
    return { cancelRequested: r.rows[0]?.cancel_requested ?? false };
  }

  /** Keeps running tasks alive; returns those someone asked to cancel. */
  async heartbeat(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const r = await this.pool.query<{ id: string; cancel_requested: boolean }>(
      `UPDATE dp_task SET heartbeat_at = now() WHERE id = ANY($1::uuid[]) RETURNING id, cancel_requested`,
      [ids],
    );
    return r.rows.filter((x) => x.cancel_requested).map((x) => x.id);
  }

  async finish(t: Task): Promise<void> {
    await this.pool.query(
      `UPDATE dp_task SET status = $2, progress = $3, ended_at = $4, error = $5, error_phrase = $6, result = $7, cancel_requested = $8 WHERE id = $1`,
      [t.id, t.status, JSON.stringify(t.progress), t.endedAt, t.error, phraseJson(t.errorPhrase), t.result ? JSON.stringify(t.result) : null, t.cancelRequested],
    );
  }

  async requestCancel(id: string): Promise<boolean> {
    const r = await this.pool.query(`UPDATE dp_task SET cancel_requested = true WHERE id = $1 AND status = 'RUNNING'`, [id]);
    return (r.rowCount ?? 0) > 0;
  }

  async appendLog(taskId: string, entry: TaskLogEntry): Promise<void> {
    await this.pool.query(`INSERT INTO dp_task_log (task_id, seq, time, level, message, phrase) VALUES ($1, $2, $3, $4, $5, $6)`, [
      taskId,
      entry.seq,
      entry.time,
      entry.level,
      entry.message,
      phraseJson(entry.phrase ?? null),
    ]);
  }

  /** Running tasks whose node stopped beating are marked INTERRUPTED. */
  async markStaleInterrupted(staleSeconds: number): Promise<number> {
    const r = await this.pool.query(
      `UPDATE dp_task SET status = 'INTERRUPTED', ended_at = now(),
         error = coalesce(error, 'the process running this task stopped before it ended')
       WHERE status = 'RUNNING' AND heartbeat_at < now() - make_interval(secs => $1)`,
      [staleSeconds],
    );
    return r.rowCount ?? 0;
  }

  async get(id: string): Promise<Task | null> {
    const r = await this.pool.query<TaskRow>('SELECT * FROM dp_task WHERE id = $1', [id]);
    return r.rows[0] ? toTask(r.rows[0]) : null;
  }

  /**
   * The newest running task of one of `kinds` (and `target`), once the running tasks whose node stopped beating
   * for `staleSeconds` are marked INTERRUPTED (as markStaleInterrupted): one statement, one round trip, since
   * the API asks it at every read of the generations.
   */
  async findRunning(kinds: readonly TaskKind[], target: string | null | undefined, staleSeconds: number): Promise<Task | null> {
    // The statement's SELECT sees the rows as they were before its UPDATE: the ones it marks are left out by id.
    const r = await this.pool.query<TaskRow>(
      `WITH stale AS (
         UPDATE dp_task SET status = 'INTERRUPTED', ended_at = now(),
           error = coalesce(error, 'the process running this task stopped before it ended')
         WHERE status = 'RUNNING' AND heartbeat_at < now() - make_interval(secs => $3)
         RETURNING id)
       SELECT * FROM dp_task WHERE status = 'RUNNING' AND kind = ANY($1::text[]) AND ($2::text IS NULL OR target = $2)
         AND id NOT IN (SELECT id FROM stale)
       ORDER BY created_at DESC LIMIT 1`,
      [[...kinds], target ?? null, staleSeconds],
    );
    return r.rows[0] ? toTask(r.rows[0]) : null;
  }

  async list(q: TaskQuery): Promise<{ total: number; offset: number; items: Task[] }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (q.kind) add('kind = ?', q.kind);
    if (q.status) add('status = ?', q.status);
    if (q.actorUid) add('actor_uid = ?', q.actorUid);
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM dp_task ${clause}`, args);
    const rows = await this.pool.query<TaskRow>(
      `SELECT * FROM dp_task ${clause} ORDER BY created_at DESC, id OFFSET $${args.length + 1} LIMIT $${args.length + 2}`,
      [...args, q.offset, q.limit],
    );
    return { total: Number(total.rows[0].n), offset: q.offset, items: rows.rows.map(toTask) };
  }

  async addFile(taskId: string, f: TaskFile): Promise<void> {
    await this.pool.query(
      `INSERT INTO dp_task_file (task_id, name, size, content_type, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (task_id, name) DO UPDATE SET size = EXCLUDED.size, content_type = EXCLUDED.content_type, created_at = EXCLUDED.created_at`,
      [taskId, f.name, f.size, f.contentType, f.createdAt],
    );
  }

  async files(taskId: string): Promise<TaskFile[]> {
    const r = await this.pool.query<{ name: string; size: string; content_type: string; created_at: Date }>(
      'SELECT name, size, content_type, created_at FROM dp_task_file WHERE task_id = $1 ORDER BY created_at, name',
      [taskId],
    );
    return r.rows.map((x) => ({ name: x.name, size: Number(x.size), contentType: x.content_type, createdAt: x.created_at.toISOString() }));
  }

  async log(taskId: string, after: number, limit: number): Promise<TaskLogEntry[]> {
    const r = await this.pool.query<{ seq: number; time: Date; level: LogLevel; message: string; phrase: Phrase | null }>(
      `SELECT seq, time, level, message, phrase FROM dp_task_log WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [taskId, after, limit],
    );
    return r.rows.map((x) => ({ seq: x.seq, time: x.time.toISOString(), level: x.level, message: x.message, phrase: x.phrase }));
  }
}

function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    kind: r.kind,
    title: r.title,
    titlePhrase: r.title_phrase,
    status: r.status,
    progress: r.progress,
    createdAt: r.created_at.toISOString(),
    endedAt: r.ended_at ? r.ended_at.toISOString() : null,
    actor: r.actor,
    actorUid: r.actor_uid,
    target: r.target,
    error: r.error,
    errorPhrase: r.error_phrase,
    result: r.result,
    cancelRequested: r.cancel_requested,
  };
}

function phraseJson(p: Phrase | null): string | null {
  return p ? JSON.stringify(p) : null;
}
