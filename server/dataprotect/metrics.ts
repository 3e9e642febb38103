// What an installation's monitoring scrapes (Prometheus text format): is the installation protected, how long the
// runs take, how much the repository holds and has room for, what the tasks did. Computed at scrape time from the
// task history and the repository; the repository's side is protection-status.ts, the navigator's summary reads
// the same.

import { Gauge, Registry } from 'prom-client';
import { inject, injectable } from 'tsyringe';
import { TaskStats } from '../store/task-stats.js';
import type { GenerationStatus, RunStatus } from './model.js';
import type { StoredGeneration } from './generation/format.js';
import { lastRun, ProtectionStatus, protectedBytes, runSeconds, succeeded } from './protection-status.js';
import { TaskOutcomes, type TaskOutcome } from './task-outcomes.js';

const RUN_STATUSES: readonly RunStatus[] = ['OK', 'WARNING', 'ERROR', 'POSTOPS_ERROR'];
const PART_STATUSES: readonly GenerationStatus[] = ['VALID', 'UNKNOWN', 'INVALID'];

const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : NaN);

@injectable()
export class DataProtectMetrics {
  readonly registry = new Registry();
  private readonly g: Record<string, Gauge> = {};

  constructor(
    @inject(ProtectionStatus) private readonly status: ProtectionStatus,
    @inject(TaskStats) private readonly tasks: TaskStats,
    @inject(TaskOutcomes) private readonly outcomes: TaskOutcomes,
  ) {
    const gauge = (name: string, help: string, labelNames: string[] = []) => {
      this.g[name] = new Gauge({ name: `bm_dataprotect_${name}`, help, labelNames, registers: [this.registry] });
    };
    gauge('last_success_timestamp_seconds', 'When the newest successful generation began (Unix time); 0 when none succeeded');
    gauge('last_run_timestamp_seconds', 'When the newest run began (Unix time)');
    gauge('last_run_duration_seconds', 'How long the newest run took, from its start to its end');
    gauge('last_run_status', 'Run status of the newest run: 1 for the status it ended with, 0 for the others', ['status']);
    gauge('part_last_run_status', 'Status of each part in the newest run: 1 for its status, 0 for the others', ['server', 'tag', 'status']);
    gauge('part_last_run_duration_seconds', 'How long each part of the newest run took', ['server', 'tag']);
    gauge('part_last_success_timestamp_seconds', 'When each part was last backed up successfully (Unix time)', ['server', 'tag']);
    gauge('part_protected_bytes', 'Full size of each part in the newest successful generation (what it protects)', ['server', 'tag']);
    gauge('part_read_bytes', 'Bytes each part read from its source in the newest run', ['server', 'tag']);
    gauge('part_added_bytes', 'Bytes each part added to the repository in the newest run (after deduplication and compression)', ['server', 'tag']);
    gauge('protected_bytes', 'Full size of the newest successful generation (all parts)');
    gauge('added_bytes', 'Bytes the newest run added to the repository');
    gauge('generations', 'Generations in the repository, by status', ['status']);
    gauge('repository_stored_bytes', 'Bytes the repository takes on its storage (packs, indexes, snapshots)');
    gauge('repository_free_bytes', 'Free space on the file system of the repository (for its user)');
    gauge('repository_filesystem_bytes', 'Size of the file system of the repository');
    gauge('tasks', 'Tasks in the history, by kind and status', ['kind', 'status']);
    gauge('task_duration_seconds_sum', 'Total duration of the ended tasks, by kind and status', ['kind', 'status']);
    gauge('task_duration_seconds_max', 'Longest duration of an ended task, by kind and status', ['kind', 'status']);
    gauge('restores', 'Restore tasks (single and global), by status', ['status']);
    gauge('last_check_timestamp_seconds', 'When the newest repository check ended (Unix time); 0 when none ran');
    gauge('last_check_result', 'Result of the newest repository check: 1 for success or failure, 0 for the other; absent when none ran', ['result']);
    gauge('last_check_duration_seconds', 'How long the newest repository check took');
    gauge('last_check_errors', 'Errors the newest repository check found');
    gauge('last_rehearsal_timestamp_seconds', 'When the newest restore rehearsal ended (Unix time); 0 when none ran');
    gauge('last_rehearsal_result', 'Result of the newest restore rehearsal (success: restored and exact): 1 for success or failure, 0 for the other; absent when none ran', ['result']);
    gauge('last_rehearsal_duration_seconds', 'How long the newest restore rehearsal took');
  }

  /** The metrics, freshly computed, in Prometheus text format. */
  async render(): Promise<{ contentType: string; body: string }> {
    await this.refresh();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async refresh(): Promise<void> {
    for (const g of Object.values(this.g)) g.reset();
    const repo = await this.status.read();
    if (repo.generations) this.fromRepository(repo.generations);
    else this.g.last_success_timestamp_seconds.set(0);
    if (repo.storedBytes !== null) this.g.repository_stored_bytes.set(repo.storedBytes);
    if (repo.freeBytes !== null) this.g.repository_free_bytes.set(repo.freeBytes);
    if (repo.filesystemBytes !== null) this.g.repository_filesystem_bytes.set(repo.filesystemBytes);
    const restores = new Map<string, number>();
    for (const t of await this.tasks.byKindAndStatus()) {
      const labels = { kind: t.kind, status: t.status };
      this.g.tasks.set(labels, t.count);
      this.g.task_duration_seconds_sum.set(labels, t.durationSeconds);
      this.g.task_duration_seconds_max.set(labels, t.maxDurationSeconds);
      if (t.kind === 'restore' || t.kind === 'global-restore') restores.set(t.status, (restores.get(t.status) ?? 0) + t.count);
    }
    for (const [status, n] of restores) this.g.restores.set({ status }, n);

    const [check, rehearsal] = await Promise.all([this.outcomes.lastCheck(true), this.outcomes.lastRehearsal(true)]);
    if (check) {
      this.lastOutcome('check', check, check.status === 'SUCCEEDED' && !check.errors);
      if (check.errors !== null) this.g.last_check_errors.set(check.errors);
    }
    if (rehearsal) this.lastOutcome('rehearsal', rehearsal, rehearsal.status === 'SUCCEEDED' && rehearsal.ok !== false);
  }

  private lastOutcome(kind: 'check' | 'rehearsal', t: TaskOutcome, success: boolean): void {
    this.g[`last_${kind}_timestamp_seconds`].set(seconds(t.endedAt ?? t.startedAt));
    this.g[`last_${kind}_result`].set({ result: 'success' }, success ? 1 : 0);
    this.g[`last_${kind}_result`].set({ result: 'failure' }, success ? 0 : 1);
    if (t.durationSeconds !== null) this.g[`last_${kind}_duration_seconds`].set(t.durationSeconds);
  }

  private fromRepository(gens: StoredGeneration[]): void {
    // newest first
    const byStatus = new Map<string, number>(PART_STATUSES.map((s) => [s, 0]));
    for (const g of gens) byStatus.set(g.record.status, (byStatus.get(g.record.status) ?? 0) + 1);
    for (const [status, n] of byStatus) this.g.generations.set({ status }, n);

    const success = gens.find(succeeded);
    this.g.last_success_timestamp_seconds.set(success ? seconds(success.record.protectionTime) : 0);
    if (success) {
      for (const s of success.partSnapshots) this.g.part_protected_bytes.set({ server: s.server, tag: s.tag }, s.summary.bytesTotal);
      this.g.protected_bytes.set(protectedBytes(success));
    }
    const last = lastRun(gens);
    if (last) {
      const r = last.record;
      this.g.last_run_timestamp_seconds.set(seconds(r.protectionTime));
      const duration = runSeconds(last);
      if (duration !== null) this.g.last_run_duration_seconds.set(duration);
      for (const s of RUN_STATUSES) this.g.last_run_status.set({ status: s }, r.runStatus === s ? 1 : 0);
      this.g.added_bytes.set(r.parts.reduce((n, p) => n + p.sizeAdded, 0));
      for (const p of r.parts) {
        const labels = { server: p.server, tag: p.tag };
        for (const s of PART_STATUSES) this.g.part_last_run_status.set({ ...labels, status: s }, p.status === s ? 1 : 0);
        if (p.end) this.g.part_last_run_duration_seconds.set(labels, seconds(p.end) - seconds(p.begin));
        this.g.part_read_bytes.set(labels, p.sizeRead);
        this.g.part_added_bytes.set(labels, p.sizeAdded);
      }
    }
    // Per part, the newest generation in which that part was valid.
    const seen = new Set<string>();
    for (const g of gens) {
      if (g.interrupted) continue;
      for (const p of g.record.parts) {
        const key = `${p.server}\t${p.tag}`;
        if (p.status !== 'VALID' || seen.has(key)) continue;
        seen.add(key);
        this.g.part_last_success_timestamp_seconds.set({ server: p.server, tag: p.tag }, seconds(p.end ?? p.begin));
      }
    }
  }
}
