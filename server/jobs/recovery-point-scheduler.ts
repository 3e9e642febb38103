import type { ClusterCoordinator } from './cluster.js';
import type { SchedulerLog } from './scheduler.js';

const JOB = 'recovery-point';

/** The recovery-point settings (the domain's settings have this shape). */
export interface RecoveryPointSchedule {
  recoveryPointsEnabled: boolean;
  /** Minutes between two recovery points. */
  recoveryPointMinutes: number;
}

export interface RecoveryPointScheduleSettings {
  get(): Promise<RecoveryPointSchedule>;
  onChange(listener: (s: RecoveryPointSchedule) => void): () => void;
}

/** What the schedule starts, and what it makes way for (the domain's runner and task history have this shape). */
export interface ScheduledRecoveryPoints {
  startRecoveryPoint(by: { scheduler: true }): Promise<{ task: { id: string }; alreadyRunning: boolean }>;
  /** A backup is running somewhere in the cluster: the slot is skipped, the backup protects the mail too. */
  backupRunning(): Promise<boolean>;
}

/** A repeating timer whose ticks fall on multiples of `everyMs`; setTimeout by default, a test's own to fire ticks itself. */
export interface SlotTimer {
  stop(): void;
}
export type ArmSlotTimer = (everyMs: number, tick: (slot: Date) => void) => SlotTimer;

/** The start of the slot `at` falls in: slots are multiples of the interval since the epoch, the same on every node. */
export function slotOf(at: Date, everyMs: number): Date {
  return new Date(Math.floor(at.getTime() / everyMs) * everyMs);
}

export const slotTimer: ArmSlotTimer = (everyMs, tick) => {
  let handle: NodeJS.Timeout | null = null;
  let stopped = false;
  const armNext = () => {
    if (stopped) return;
    const next = slotOf(new Date(), everyMs).getTime() + everyMs;
    handle = setTimeout(() => {
      tick(new Date(next));
      armNext();
    }, Math.max(0, next - Date.now()));
    handle.unref?.();
  };
  armNext();
  return {
    stop: () => {
      stopped = true;
      if (handle) clearTimeout(handle);
    },
  };
};

export type RecoveryPointOutcome = 'started' | 'already-running' | 'claimed-elsewhere' | 'skipped-backup' | 'skipped-busy' | 'failed';

/**
 * Takes a mail recovery point every N minutes while enabled, and re-arms when the settings change. Each slot (a
 * multiple of N minutes) runs on one node of the cluster: the first to claim it in dp_schedule_slot_claim. A
 * slot that falls while a backup runs is skipped (that backup protects the mail too), as one that finds the
 * backup lock held by a retention or forget.
 */
export class RecoveryPointScheduler {
  private timer: SlotTimer | null = null;
  private unsubscribe: (() => void) | null = null;
  private everyMs: number | null = null;

  constructor(
    private readonly settings: RecoveryPointScheduleSettings,
    private readonly runner: ScheduledRecoveryPoints,
    private readonly cluster: Pick<ClusterCoordinator, 'claimSlot' | 'slotClaimedBy'>,
    private readonly log: SchedulerLog,
    private readonly arm: ArmSlotTimer = slotTimer,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async start(): Promise<void> {
    this.rearm(await this.settings.get());
    this.unsubscribe = this.settings.onChange((s) => this.rearm(s));
  }

  /** Minutes between two recovery points, or null when they are off. */
  get minutes(): number | null {
    return this.everyMs === null ? null : this.everyMs / 60_000;
  }

  /** The next slot, or null when off. */
  nextRun(): Date | null {
    if (this.everyMs === null) return null;
    return new Date(slotOf(this.now(), this.everyMs).getTime() + this.everyMs);
  }

  private rearm(s: RecoveryPointSchedule): void {
    const everyMs = s.recoveryPointsEnabled ? s.recoveryPointMinutes * 60_000 : null;
    if (everyMs === this.everyMs && (this.timer !== null) === (everyMs !== null)) return;
    this.timer?.stop();
    const wasOn = this.timer !== null;
    this.timer = null;
    this.everyMs = everyMs;
    if (everyMs === null) {
      if (wasOn) this.log.info('mail recovery points not scheduled (disabled)');
      return;
    }
    this.timer = this.arm(everyMs, (slot) => void this.runScheduled(slot));
    this.log.info(`mail recovery points scheduled every ${s.recoveryPointMinutes} minutes`);
  }

  /** What a tick does (public for tests): skip during a backup, claim the slot, then start the recovery point. */
  async runScheduled(at = this.now()): Promise<RecoveryPointOutcome> {
    if (this.everyMs === null) return 'failed';
    const slot = slotOf(at, this.everyMs);
    const label = slot.toISOString();
    try {
      if (await this.runner.backupRunning()) {
        this.log.info(`mail recovery point of ${label}: skipped, a backup is running`);
        return 'skipped-backup';
      }
      if (!(await this.cluster.claimSlot(JOB, slot))) {
        const by = await this.cluster.slotClaimedBy(JOB, slot);
        this.log.info(`mail recovery point of ${label}: already started by ${by ?? 'another node'}, not starting another`);
        return 'claimed-elsewhere';
      }
      const { task, alreadyRunning } = await this.runner.startRecoveryPoint({ scheduler: true });
      if (alreadyRunning) {
        this.log.info(`mail recovery point of ${label}: the previous one is still running (${task.id})`);
        return 'already-running';
      }
      this.log.info(`mail recovery point of ${label} started (${task.id})`);
      return 'started';
    } catch (err) {
      // The backup lock held by a retention or forget: this slot is skipped, the next one tries again.
      if ((err as { name?: string }).name === 'ConflictError') {
        this.log.info(`mail recovery point of ${label}: skipped, ${(err as Error).message}`);
        return 'skipped-busy';
      }
      this.log.error(`mail recovery point of ${label} could not start: ${(err as Error).message}`);
      return 'failed';
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.timer?.stop();
    this.timer = null;
    this.everyMs = null;
  }
}
