// The last repository check, the last restore rehearsal and the last off-site copy, as the task history recorded them: what the
// navigator's summary shows and what the metrics report. A cancelled task says nothing of the repository.

import { inject, injectable } from 'tsyringe';
import { TaskRegistry } from '../jobs/task-registry.js';
import type { Task } from '../store/task-record.js';

export interface TaskOutcome {
  taskId: string;
  status: Task['status'];
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number | null;
  error: string | null;
}

export interface CheckOutcome extends TaskOutcome {
  mode: 'structure' | 'sample' | 'full' | null;
  errors: number | null;
  warnings: number | null;
}

export interface RehearsalOutcome extends TaskOutcome {
  generationId: string | null;
  ok: boolean | null;
  parts: { server: string; tag: string; verdict: 'same' | 'differs'; compared: number; differences: string[] }[];
}

export interface CopyOutcome extends TaskOutcome {
  generationId: string | null;
  location: string | null;
  bytesAdded: number | null;
}

function outcome(t: Task): TaskOutcome {
  return {
    taskId: t.id,
    status: t.status,
    startedAt: t.createdAt,
    endedAt: t.endedAt,
    durationSeconds: t.endedAt ? Math.max(0, (Date.parse(t.endedAt) - Date.parse(t.createdAt)) / 1000) : null,
    error: t.error,
  };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function checkOutcome(t: Task): CheckOutcome {
  const r = t.result ?? {};
  const mode = r.mode === 'structure' || r.mode === 'sample' || r.mode === 'full' ? r.mode : null;
  return { ...outcome(t), mode, errors: num(r.errors), warnings: num(r.warnings) };
}

function rehearsalOutcome(t: Task): RehearsalOutcome {
  const r = t.result ?? {};
  const parts = Array.isArray(r.parts) ? (r.parts as RehearsalOutcome['parts']) : [];
  const durationMs = num(r.durationMs);
  return {
    ...outcome(t),
    // The rehearsal's own measure when it reported one (the task also spans opening the repository).
    durationSeconds: durationMs !== null ? durationMs / 1000 : outcome(t).durationSeconds,
    generationId: typeof r.generationId === 'string' ? r.generationId : null,
    ok: typeof r.ok === 'boolean' ? r.ok : null,
    parts: parts.map((p) => ({
      server: String(p.server), tag: String(p.tag), verdict: p.verdict === 'same' ? 'same' : 'differs',
      compared: num(p.compared) ?? 0, differences: Array.isArray(p.differences) ? p.differences.map(String) : [],
    })),
  };
}

function copyOutcome(t: Task): CopyOutcome {
  const r = t.result ?? {};
  return {
    ...outcome(t),
    generationId: typeof r.generationId === 'string' ? r.generationId : t.target,
    location: typeof r.location === 'string' ? r.location : null,
    bytesAdded: num(r.bytesAdded),
  };
}

@injectable()
export class TaskOutcomes {
  constructor(@inject(TaskRegistry) private readonly tasks: TaskRegistry) {}

  /** The newest check; `ended` passes over one still running (the metrics report the last result). */
  async lastCheck(ended = false): Promise<CheckOutcome | null> {
    const t = await this.newest('check', ended);
    return t ? checkOutcome(t) : null;
  }

  async lastRehearsal(ended = false): Promise<RehearsalOutcome | null> {
    const t = await this.newest('rehearsal', ended);
    return t ? rehearsalOutcome(t) : null;
  }

  async lastOffsiteCopy(ended = false): Promise<CopyOutcome | null> {
    const t = await this.newest('copy', ended);
    return t ? copyOutcome(t) : null;
  }

  private async newest(kind: 'check' | 'rehearsal' | 'copy', ended: boolean): Promise<Task | null> {
    const page = await this.tasks.list({ kind, offset: 0, limit: 20 });
    return page.items.find((t) => t.status !== 'CANCELLED' && !(ended && t.status === 'RUNNING')) ?? null;
  }
}
