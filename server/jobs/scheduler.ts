import cron, { type ScheduledTask } from 'node-cron';
import type { ClusterCoordinator } from './cluster.js';

const JOB = 'backup';

/** The local calendar day of a date, YYYY-MM-DD (the schedule runs in the server's time zone). */
function localDay(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The settings the schedule follows (the domain's settings service has this shape). */
export interface ScheduleSettings {
  get(): Promise<{ backupTime: string }>;
  /** Calls back on every change; answers the unsubscribe function. */
  onChange(listener: (s: { backupTime: string }) => void): () => void;
}

/** What the schedule starts (the domain's backup runner has this shape). */
export interface ScheduledBackups {
  start(by: { scheduler: true }, trigger: 'schedule'): Promise<{ task: { id: string }; alreadyRunning: boolean }>;
}

export interface SchedulerLog {
  info(message: string): void;
  error(message: string): void;
}

/**
 * Runs the backup daily at the configured time and follows changes of that time. The schedule starts at most one
 * run per day across the cluster: the first node to claim the day runs it, the others say so in their log.
 * "Backup now" does not go through here and can always run (the runner answers with a run in progress).
 */
export class BackupScheduler {
  private task: ScheduledTask | null = null;
  private unsubscribe: (() => void) | null = null;
  private time: string | null = null;

  constructor(
    private readonly settings: ScheduleSettings,
    private readonly runner: ScheduledBackups,
    private readonly cluster: ClusterCoordinator,
    private readonly log: SchedulerLog,
  ) {}

  async start(): Promise<void> {
    this.reschedule(await this.settings.get());
    this.unsubscribe = this.settings.onChange((s) => this.reschedule(s));
  }

  /** HH:MM of the next scheduled run, or null when stopped. */
  get backupTime(): string | null {
    return this.time;
  }

  nextRun(): Date | null {
    return this.task?.getNextRun() ?? null;
  }

  private reschedule(s: { backupTime: string }): void {
    if (s.backupTime === this.time && this.task) return;
    void this.task?.destroy();
    const [hh, mm] = s.backupTime.split(':').map(Number);
    this.time = s.backupTime;
    this.task = cron.schedule(`${mm} ${hh} * * *`, () => this.runScheduled(), { name: 'dataprotect-backup', noOverlap: true });
    this.log.info(`daily backup scheduled at ${s.backupTime}`);
  }

  /** What the cron tick does (public for tests): claim today, then start the run. */
  async runScheduled(now = new Date()): Promise<'started' | 'claimed-elsewhere' | 'failed'> {
    const day = localDay(now);
    try {
      if (!(await this.cluster.claimScheduledRun(JOB, day))) {
        const by = await this.cluster.claimedBy(JOB, day);
        this.log.info(`scheduled backup of ${day}: already started by ${by ?? 'another node'}, not starting another`);
        return 'claimed-elsewhere';
      }
      const { task, alreadyRunning } = await this.runner.start({ scheduler: true }, 'schedule');
      this.log.info(alreadyRunning ? `scheduled backup: a run is already in progress (${task.id})` : `scheduled backup started (${task.id})`);
      return 'started';
    } catch (err) {
      this.log.error(`scheduled backup could not start: ${(err as Error).message}`);
      return 'failed';
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.task?.destroy();
    this.task = null;
    this.time = null;
  }
}
