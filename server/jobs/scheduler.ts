import cron, { type ScheduledTask } from 'node-cron';
import type { ClusterCoordinator } from './cluster.js';

const JOB = 'backup';
const REHEARSAL_JOB = 'rehearsal';

/** A timer armed on a cron expression, in the server's time zone. */
export interface ArmedTimer {
  nextRun(): Date | null;
  stop(): Promise<void> | void;
}

/** Arms `tick` on `expression`; node-cron by default, a test's own to fire ticks without waiting for the clock. */
export type ArmTimer = (expression: string, name: string, tick: () => void) => ArmedTimer;

export const cronTimer: ArmTimer = (expression, name, tick) => {
  const task: ScheduledTask = cron.schedule(expression, tick, { name, noOverlap: true });
  return { nextRun: () => task.getNextRun() ?? null, stop: () => task.destroy() };
};

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

/** The rehearsal's settings (the domain's settings have this shape). */
export interface RehearsalSchedule {
  rehearsalEnabled: boolean;
  /** `daily`, or the day of the week it runs on. */
  rehearsalDay: string;
  /** HH:MM */
  rehearsalTime: string;
}

export interface RehearsalScheduleSettings {
  get(): Promise<RehearsalSchedule>;
  onChange(listener: (s: RehearsalSchedule) => void): () => void;
}

/** What the schedule starts (the domain's rehearsal service has this shape). */
export interface ScheduledRehearsals {
  start(by: { scheduler: true }): Promise<{ task: { id: string }; alreadyRunning: boolean }>;
}

const WEEKDAYS: Record<string, number> = { sunday: 0, monday: 1, tuesday: 2, wednesday: 3, thursday: 4, friday: 5, saturday: 6 };

/** The cron expression of a rehearsal schedule: minute hour, every day or on one day of the week. */
export function rehearsalCron(s: Pick<RehearsalSchedule, 'rehearsalDay' | 'rehearsalTime'>): string {
  const [hh, mm] = s.rehearsalTime.split(':').map(Number);
  const dow = s.rehearsalDay === 'daily' ? '*' : WEEKDAYS[s.rehearsalDay];
  if (dow === undefined || !Number.isInteger(hh) || !Number.isInteger(mm)) throw new Error(`not a rehearsal schedule: ${s.rehearsalDay} at ${s.rehearsalTime}`);
  return `${mm} ${hh} * * ${dow}`;
}

/**
 * Runs the restore rehearsal when enabled, weekly on its day (or daily) at its time, in the server's time zone,
 * and re-arms when the settings change. Like the backup, at most one scheduled rehearsal a day across the cluster.
 */
export class RehearsalScheduler {
  private timer: ArmedTimer | null = null;
  private unsubscribe: (() => void) | null = null;
  private armed: string | null = null;

  constructor(
    private readonly settings: RehearsalScheduleSettings,
    private readonly rehearsals: ScheduledRehearsals,
    private readonly cluster: ClusterCoordinator,
    private readonly log: SchedulerLog,
    private readonly arm: ArmTimer = cronTimer,
  ) {}

  async start(): Promise<void> {
    await this.rearm(await this.settings.get());
    this.unsubscribe = this.settings.onChange((s) => void this.rearm(s));
  }

  /** The cron expression armed, or null when the rehearsal is off. */
  get expression(): string | null {
    return this.armed;
  }

  nextRun(): Date | null {
    return this.timer?.nextRun() ?? null;
  }

  private async rearm(s: RehearsalSchedule): Promise<void> {
    const expression = s.rehearsalEnabled ? rehearsalCron(s) : null;
    if (expression === this.armed && (this.timer !== null) === (expression !== null)) return;
    const old = this.timer;
    this.timer = null;
    this.armed = expression;
    await old?.stop();
    if (expression === null) {
      if (old) this.log.info('restore rehearsal not scheduled (disabled)');
      return;
    }
    this.timer = this.arm(expression, 'dataprotect-rehearsal', () => void this.runScheduled());
    const when = s.rehearsalDay === 'daily' ? 'every day' : `every ${s.rehearsalDay}`;
    this.log.info(`restore rehearsal scheduled ${when} at ${s.rehearsalTime}`);
  }

  /** What the timer's tick does (public for tests): claim today, then start the rehearsal. */
  async runScheduled(now = new Date()): Promise<'started' | 'claimed-elsewhere' | 'failed'> {
    const day = localDay(now);
    try {
      if (!(await this.cluster.claimScheduledRun(REHEARSAL_JOB, day))) {
        const by = await this.cluster.claimedBy(REHEARSAL_JOB, day);
        this.log.info(`scheduled rehearsal of ${day}: already started by ${by ?? 'another node'}, not starting another`);
        return 'claimed-elsewhere';
      }
      const { task, alreadyRunning } = await this.rehearsals.start({ scheduler: true });
      this.log.info(alreadyRunning ? `scheduled rehearsal: one is already in progress (${task.id})` : `scheduled rehearsal started (${task.id})`);
      return 'started';
    } catch (err) {
      this.log.error(`scheduled rehearsal could not start: ${(err as Error).message}`);
      return 'failed';
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.timer?.stop();
    this.timer = null;
    this.armed = null;
  }
}
