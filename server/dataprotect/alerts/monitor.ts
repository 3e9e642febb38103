// Mail to the administrators when the installation is not protected: a run ended in ERROR or POSTOPS_ERROR, no
// generation succeeded for 26 hours, a repository check or a restore rehearsal failed. One mail per incident: an
// incident opens with the first failure and closes with the next success; failures in between (the retries) are
// counted in dp_alert, not mailed again. Evaluated from the task history and the generations, on a timer, so that
// it sees the runs of every node and notices the silence of a schedule that stopped.

import { hostname } from 'node:os';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import { TaskRegistry } from '../../jobs/task-registry.js';
import { AlertStore, type AlertIncident } from '../../store/alert-store.js';
import type { Task } from '../../store/task-record.js';
import { GenerationCache } from '../generation/cache.js';
import { readGenerations, type GenerationRecord } from '../generation/format.js';
import { openLocation } from '../generation/repository.js';
import type { Mailer } from '../restore/mailer.js';
import { SettingsService } from '../settings.js';
import { MAX_SILENCE_HOURS } from '../summary.js';

export type AlertKind = 'run' | 'no-success' | 'check' | 'rehearsal';

export interface AlertConfig {
  /** null: incidents are recorded, nothing is sent (no relay configured). */
  mailer: Mailer | null;
  recipients: string[];
  from: string;
  /** How long without a successful generation before it is an incident. */
  maxSilenceHours?: number;
  log?: { info(m: string): void; error(m: string): void };
}

export const ALERT_CONFIG: InjectionToken<AlertConfig> = Symbol('dp.AlertConfig');

const ENDED = new Set(['SUCCEEDED', 'FAILED', 'INTERRUPTED']);
const MAIL_RETRY_SECONDS = 300;

/** The recipients of DP_ALERT_RECIPIENTS: addresses separated by commas, semicolons or spaces. */
export function parseRecipients(value: string | undefined): string[] {
  const list = (value ?? '').split(/[\s,;]+/).filter(Boolean);
  for (const a of list) if (!/^[^@\s]+@[^@\s]+$/.test(a)) throw new Error(`DP_ALERT_RECIPIENTS: ${JSON.stringify(a)} is not an e-mail address`);
  return list;
}

function succeeded(r: GenerationRecord): boolean {
  return r.state === 'final' && r.status === 'VALID' && (r.runStatus === 'OK' || r.runStatus === 'WARNING');
}

function when(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

@injectable()
export class AlertMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(AlertStore) private readonly store: AlertStore,
    @inject(SettingsService) private readonly settings: SettingsService,
    @inject(GenerationCache) private readonly cache: GenerationCache,
    @inject(ALERT_CONFIG) private readonly config: AlertConfig,
  ) {}

  /** Evaluates now and then every `intervalMs`. */
  start(intervalMs: number): void {
    const tick = () => void this.evaluate().catch((e: Error) => this.config.log?.error(`alerts: ${e.message}`));
    setImmediate(tick);
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running.catch(() => {});
  }

  /** One evaluation (evaluations never overlap in a process); answers the incidents mailed by it. */
  evaluate(now = new Date()): Promise<AlertIncident[]> {
    const next = this.running.catch(() => {}).then(() => this.evaluateOnce(now));
    this.running = next;
    return next;
  }

  private async evaluateOnce(now: Date): Promise<AlertIncident[]> {
    const { repositoryLocation } = await this.settings.get();
    const generations = await this.generations(repositoryLocation);

    const run = await this.lastEnded('backup');
    if (run?.status === 'SUCCEEDED') await this.store.close('run');
    else if (run) {
      const g = generations.find((x) => x.protectionTime >= run.createdAt && (!run.endedAt || x.protectionTime <= run.endedAt));
      await this.incident('run', run.id, g ? `Backup failed: generation ${g.id} ended in ${g.runStatus ?? 'ERROR'}` : 'Backup failed', this.runBody(run, g));
    }

    for (const kind of ['check', 'rehearsal'] as const) {
      const t = await this.lastEnded(kind);
      if (t?.status === 'SUCCEEDED') await this.store.close(kind);
      else if (t) {
        const what = kind === 'check' ? 'The repository check' : 'The restore rehearsal';
        await this.incident(kind, t.id, `${what} failed`, [
          `${what} "${t.title}" (task ${t.id}) ${t.status === 'INTERRUPTED' ? 'was interrupted' : 'failed'} at ${when(t.endedAt ?? t.createdAt)}.`,
          '', `Reason: ${t.error ?? 'not recorded'}`, '',
          'The generations may not be restorable. Look at the task log in the console, and run the check again once the cause is fixed.',
        ].join('\n'));
      }
    }

    const maxHours = this.config.maxSilenceHours ?? MAX_SILENCE_HOURS;
    const lastSuccess = generations.find(succeeded);
    const since = lastSuccess ? new Date(lastSuccess.protectionTime) : await this.store.installedAt();
    if (since && now.getTime() - since.getTime() > maxHours * 3600_000) {
      const hours = Math.floor((now.getTime() - since.getTime()) / 3600_000);
      await this.incident('no-success', lastSuccess?.id ?? 'none', `No successful backup for ${hours} hours`, [
        lastSuccess
          ? `The newest successful generation is ${lastSuccess.id}, of ${when(lastSuccess.protectionTime)}: no generation has succeeded for ${hours} hours.`
          : `No generation has succeeded since bm-dataprotect was installed, ${when(since.toISOString())} (${hours} hours ago).`,
        '', `Repository: ${repositoryLocation}`, '',
        'Check that the scheduled backup runs (Settings > Configuration: backup time), and look at the last backup task in the console.',
      ].join('\n'));
    } else if (lastSuccess) await this.store.close('no-success');

    return this.send();
  }

  /** The newest ended task of a kind (cancelled ones say nothing about the installation). */
  private async lastEnded(kind: string): Promise<Task | null> {
    const page = await this.tasks.list({ kind: kind as Task['kind'], offset: 0, limit: 20 });
    return page.items.find((t) => ENDED.has(t.status)) ?? null;
  }

  /** Newest first: the plugin's cache, or the repository itself when the cache was never filled. */
  private async generations(location: string): Promise<GenerationRecord[]> {
    const cached = await this.cache.list(location).catch(() => null);
    if (cached) return cached;
    const repo = await openLocation(location, { loadIndex: false }).catch(() => null);
    if (!repo) return [];
    try {
      return (await readGenerations(repo)).map((g) => g.record);
    } finally {
      await repo.close();
    }
  }

  private async incident(kind: AlertKind, ref: string, subject: string, body: string): Promise<void> {
    const opened = await this.store.open(kind, subject, body, ref);
    if (opened) this.config.log?.info(`alert opened: ${subject}`);
    else await this.store.recur(kind, ref);
  }

  private runBody(task: Task, g: GenerationRecord | undefined): string {
    const lines = [
      `The backup "${task.title}" (task ${task.id}), started by ${task.actor} at ${when(task.createdAt)}, ${task.status === 'INTERRUPTED' ? 'was interrupted' : 'failed'}.`,
      '',
    ];
    if (g) {
      lines.push(`Generation: ${g.id} (${g.status}, run status ${g.runStatus ?? 'ERROR'})`);
      for (const p of g.parts.filter((x) => x.status !== 'VALID')) lines.push(`  ${p.server} ${p.tag}: ${p.status}: ${p.messages.join('; ') || 'no reason recorded'}`);
      for (const m of g.messages) lines.push(`  ${m}`);
      lines.push('');
    }
    lines.push(`Reason: ${task.error ?? 'not recorded'}`, '');
    lines.push('Further failures are not mailed until a backup succeeds again. The task log in the console has the details.');
    return lines.join('\n');
  }

  private async send(): Promise<AlertIncident[]> {
    const { mailer, recipients } = this.config;
    if (!mailer || recipients.length === 0) return [];
    const sent: AlertIncident[] = [];
    for (const i of await this.store.claimUnmailed(MAIL_RETRY_SECONDS)) {
      try {
        await mailer.send({ from: this.config.from, to: recipients.join(', '), subject: `[bm-dataprotect] ${i.subject}`, text: `${i.body}\n\n-- \nbm-dataprotect on ${hostname()}\n`, attachments: [] });
        await this.store.mailed(i.id, null);
        sent.push(i);
      } catch (e) {
        await this.store.mailed(i.id, (e as Error).message);
        this.config.log?.error(`alert "${i.subject}" not sent (tried again in ${MAIL_RETRY_SECONDS / 60} minutes): ${(e as Error).message}`);
      }
    }
    return sent;
  }
}
