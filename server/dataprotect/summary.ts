// "Am I protected?": the navigator's summary above the generations. The repository's side (generations, sizes,
// room on its disk) is the metrics' computation (protection-status.ts); the schedule, the last check and the last
// rehearsal come from the schedulers and the task history. Warnings say what needs looking at.

import { inject, injectable } from 'tsyringe';
import { TaskRegistry } from '../jobs/task-registry.js';
import type { GenerationStatus, RunStatus } from './model.js';
import { managesInstallation, type Principal } from './principal.js';
import { lastRun, ProtectionStatus, protectedBytes, runSeconds, succeeded } from './protection-status.js';
import { SCHEDULE_VIEW, type ScheduleView, type SummaryService } from './services.js';
import { serverTimeZone, SettingsService } from './settings.js';
import { TaskOutcomes, type CheckOutcome, type CopyOutcome, type RehearsalOutcome } from './task-outcomes.js';

export type { CheckOutcome, CopyOutcome, RehearsalOutcome } from './task-outcomes.js';

/** How long without a successful generation before the summary warns (the alerts' threshold too). */
export const MAX_SILENCE_HOURS = 26;
/** Below this share of free space on the repository's disk, the summary warns. */
export const LOW_SPACE_RATIO = 0.1;

export type WarningCode = 'no-success' | 'same-filesystem' | 'low-space';

export interface SummaryWarning {
  code: WarningCode;
  message: string;
  params: Record<string, string | number>;
}

export interface ProtectionSummary {
  scope: 'installation' | 'domain';
  timeZone: string;
  lastSuccess: { generationId: string; protectionTime: string } | null;
  lastRun: {
    generationId: string;
    protectionTime: string;
    status: GenerationStatus;
    runStatus: RunStatus | null;
    trigger: string;
    durationSeconds: number | null;
  } | null;
  backupRunning: boolean;
  nextRun: string | null;
  nextRehearsal: string | null;
  protectedBytes: number | null;
  keptBytes: number | null;
  deduplicationRatio: number | null;
  repository: {
    location: string;
    storedBytes: number | null;
    freeBytes: number | null;
    filesystemBytes: number | null;
    sameFilesystemAsData: boolean | null;
    /** Why it could not be read, when it could not. */
    readError: string | null;
  } | null;
  lastCheck: CheckOutcome | null;
  lastRehearsal: RehearsalOutcome | null;
  /** The last copy of a generation to the off-site location. */
  lastOffsiteCopy: CopyOutcome | null;
  warnings: SummaryWarning[];
}

@injectable()
export class ProtectionSummaries implements SummaryService {
  constructor(
    @inject(ProtectionStatus) private readonly status: ProtectionStatus,
    @inject(SettingsService) private readonly settings: SettingsService,
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(TaskOutcomes) private readonly outcomes: TaskOutcomes,
    @inject(SCHEDULE_VIEW, { isOptional: true }) private readonly schedule?: ScheduleView,
  ) {}

  async get(by: Principal, now = new Date()): Promise<ProtectionSummary> {
    const installation = managesInstallation(by);
    const [repo, settings, running] = await Promise.all([this.status.read(), this.settings.get(), this.tasks.findRunning('backup')]);
    const gens = repo.generations ?? [];
    const success = gens.find(succeeded) ?? null;
    const last = lastRun(gens);
    const kept = repo.generations ? gens.filter((g) => !g.interrupted).reduce((n, g) => n + protectedBytes(g), 0) : null;

    const warnings: SummaryWarning[] = [];
    const hours = success ? Math.floor((now.getTime() - Date.parse(success.record.protectionTime)) / 3600_000) : null;
    if (!success) {
      warnings.push({ code: 'no-success', message: 'No backup has succeeded yet: the installation is not protected.', params: {} });
    } else if (hours! >= MAX_SILENCE_HOURS) {
      warnings.push({ code: 'no-success', message: `No backup has succeeded for ${hours} hours (over ${MAX_SILENCE_HOURS}).`, params: { hours: hours! } });
    }
    const fs = settings.repositoryFilesystem;
    if (installation && fs?.sameAsData) {
      warnings.push({
        code: 'same-filesystem',
        message: `The repository is on the same filesystem as the data it protects (${fs.dataPaths.join(', ')}): one disk failure loses both.`,
        params: { paths: fs.dataPaths.join(', ') },
      });
    }
    if (installation && repo.freeBytes !== null && repo.filesystemBytes) {
      const percent = Math.floor((repo.freeBytes / repo.filesystemBytes) * 100);
      if (repo.freeBytes / repo.filesystemBytes < LOW_SPACE_RATIO) {
        warnings.push({ code: 'low-space', message: `Only ${percent}% of the repository's disk is free (under ${LOW_SPACE_RATIO * 100}%).`, params: { percent } });
      }
    }

    const [check, rehearsal, copy] = installation
      ? await Promise.all([this.outcomes.lastCheck(), this.outcomes.lastRehearsal(), this.outcomes.lastOffsiteCopy()])
      : [null, null, null];
    return {
      scope: installation ? 'installation' : 'domain',
      timeZone: serverTimeZone(),
      lastSuccess: success ? { generationId: success.record.id, protectionTime: success.record.protectionTime } : null,
      lastRun: last
        ? {
            generationId: last.record.id,
            protectionTime: last.record.protectionTime,
            status: last.record.status,
            runStatus: last.record.runStatus,
            trigger: last.record.trigger,
            durationSeconds: runSeconds(last),
          }
        : null,
      backupRunning: running !== null,
      nextRun: this.schedule?.nextBackup()?.toISOString() ?? null,
      nextRehearsal: settings.rehearsalEnabled ? (this.schedule?.nextRehearsal()?.toISOString() ?? null) : null,
      protectedBytes: success ? protectedBytes(success) : null,
      keptBytes: kept,
      deduplicationRatio: installation && kept !== null && repo.storedBytes ? kept / repo.storedBytes : null,
      repository: installation
        ? { location: repo.location, storedBytes: repo.storedBytes, freeBytes: repo.freeBytes, filesystemBytes: repo.filesystemBytes, sameFilesystemAsData: fs ? fs.sameAsData : null, readError: repo.readError }
        : null,
      lastCheck: check,
      lastRehearsal: rehearsal,
      lastOffsiteCopy: copy,
      warnings,
    };
  }
}
