import cron, { type ScheduledTask } from 'node-cron';
import type { BackupRunner } from '../dataprotect/services.js';
import type { SavedSettings, SettingsService } from '../dataprotect/settings.js';

export interface SchedulerLog {
  info(message: string): void;
  error(message: string): void;
}

/**
 * Runs the backup daily at the configured time and follows changes of that time. Whether a run may happen
 * (never twice a day by the schedule, one node of the cluster only) is the runner's decision (issue 5).
 */
export class BackupScheduler {
  private task: ScheduledTask | null = null;
  private unsubscribe: (() => void) | null = null;
  private time: string | null = null;

  constructor(
    private readonly settings: SettingsService,
    private readonly runner: BackupRunner,
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

  private reschedule(s: SavedSettings): void {
    if (s.backupTime === this.time && this.task) return;
    void this.task?.destroy();
    const [hh, mm] = s.backupTime.split(':').map(Number);
    this.time = s.backupTime;
    this.task = cron.schedule(`${mm} ${hh} * * *`, () => this.fire(), { name: 'dataprotect-backup', noOverlap: true });
    this.log.info(`daily backup scheduled at ${s.backupTime}`);
  }

  private async fire(): Promise<void> {
    try {
      const { task, alreadyRunning } = await this.runner.start({ scheduler: true }, 'schedule');
      this.log.info(alreadyRunning ? `scheduled backup: a run is already in progress (${task.id})` : `scheduled backup started (${task.id})`);
    } catch (err) {
      this.log.error(`scheduled backup could not start: ${(err as Error).message}`);
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
