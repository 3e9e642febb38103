import type { InjectionToken } from 'tsyringe';
import type { TaskStart } from '../jobs/task-registry.js';
import type { EntityRef, Generation, GlobalRestoreOptions, MailFolder, MailMessage, Page, PrerequisiteReport, Restorable, RestorableKind, SavedContainer, SavedItem } from './model.js';
import type { ProtectionSummary } from './summary.js';
import type { Principal } from './principal.js';
import type { RestoreOperation, RestoreOperationId } from './restore-capabilities.js';

// The domain services the HTTP API binds to. generation/runner.ts (backup runs, generations) and
// restore/service.ts (single-entity restores) implement them; the composition root binds the Unavailable* ones
// (unavailable.ts) for what a registration does not offer, which refuse with CapabilityUnavailableError (HTTP 501)
// instead of inventing data.

/** Who asks, for services that also run from the scheduler or the CLI. */
export type Requester = Principal | { scheduler: true };

/** The generations (the plugin's tables are a cache of the repository's own description). */
export interface GenerationService {
  /** Newest first. */
  list(): Promise<Generation[]>;
  /** Throws NotFoundError. */
  get(id: string): Promise<Generation>;
  /** Forgets a generation; the data is reclaimed by the next prune. A task. */
  forget(id: string, by: Principal): Promise<TaskStart>;
  /** Rebuilds the cache from the repository alone (BlueMind's _syncfs). A task. */
  sync(by: Principal): Promise<TaskStart>;
  /** Keeps a generation whatever the retention policy (recorded in the repository). NotFoundError, ConflictError. */
  protect(id: string, by: Principal): Promise<Generation>;
  /** Gives a protected generation back to the retention policy. NotFoundError, ConflictError. */
  unprotect(id: string, by: Principal): Promise<Generation>;
}

export interface BackupRunner {
  /**
   * Starts a run now. The schedule never starts a second run in a day; "Backup now" can. When a run is already in
   * progress anywhere in the cluster, answers with that run's task and alreadyRunning = true.
   */
  start(by: Requester, trigger: 'api' | 'schedule' | 'cli'): Promise<TaskStart>;
  /**
   * Takes a mail recovery point now (a task of kind recovery-point): the mail parts alone, as a light generation
   * of trigger recovery-point. Answers with the running one (alreadyRunning) when one is in progress; a
   * ConflictError when a backup, retention or forget holds the lock (a recovery point never waits for them).
   */
  startRecoveryPoint(by: Requester): Promise<TaskStart>;
  /** Applies the retention policy now (forget, then prune). A task. */
  applyRetention(by: Requester): Promise<TaskStart>;
}

export interface EntityQuery {
  kind?: RestorableKind;
  search?: string;
  deleted?: boolean;
  offset: number;
  limit: number;
}

export interface MessageQuery {
  folder: string;
  search?: string;
  offset: number;
  limit: number;
}

export interface ItemQuery {
  search?: string;
  /** Only items the live container lacks (true), or only those it has (false). */
  missing?: boolean;
  offset: number;
  limit: number;
}

export interface RestoreRequest {
  operation: RestoreOperationId;
  generationId: string;
  entity: EntityRef;
  folder?: string;
  messageIds?: string[];
  container?: string;
  itemUids?: string[];
  recipient?: string;
  /** restore.into.account: the live user (same domain) that receives the data. */
  targetUid?: string;
  /** undelete.mail: the period (YYYY-MM-DD, or a date-time with its offset). */
  from?: string;
  to?: string;
}

/**
 * Single-entity restores. Every method applies the caller's scope: with manageRestore limited to some
 * organisational units, entities outside them are not listed, and touching one throws ForbiddenError.
 */
export interface RestoreService {
  /** The operations offered; with a generation, only those its parts allow. */
  capabilities(generationId?: string): Promise<RestoreOperation[]>;
  listEntities(by: Principal, generationId: string, q: EntityQuery): Promise<Page<Restorable>>;
  listMailFolders(by: Principal, generationId: string, entityUid: string): Promise<MailFolder[]>;
  listMailMessages(by: Principal, generationId: string, entityUid: string, q: MessageQuery): Promise<Page<MailMessage>>;
  /** An entity's saved containers, each with whether it still exists. */
  listContainers(by: Principal, generationId: string, entityUid: string): Promise<SavedContainer[]>;
  /** A saved container's items, each with whether the live container still has it. */
  listContainerItems(by: Principal, generationId: string, entityUid: string, containerUid: string, q: ItemQuery): Promise<Page<SavedItem>>;
  /** Starts a restore task; ConflictError when a restore of the same entity runs. */
  start(by: Principal, request: RestoreRequest): Promise<TaskStart>;
}

/** Disaster recovery from the setup wizard. */
export interface GlobalRestoreService {
  /** The generations a repository holds, read from the repository alone. */
  discover(repositoryLocation: string): Promise<Generation[]>;
  /** Checks and explains the prerequisites, touching nothing. */
  check(repositoryLocation: string, generationId: string, options?: GlobalRestoreOptions): Promise<PrerequisiteReport>;
  /** Refused (conflict) when a prerequisite is not met; resumes an interrupted restore of the same generation. */
  start(by: Principal, repositoryLocation: string, generationId: string, options?: GlobalRestoreOptions): Promise<TaskStart>;
}

/** The restore rehearsal of the newest valid generation, on demand or on its schedule. */
export interface RehearsalService {
  /** Starts one as a task of kind rehearsal; a running one is answered with alreadyRunning. ConflictError without a valid generation. */
  start(by: Requester): Promise<TaskStart>;
}

export type RepositoryCheckMode = 'structure' | 'sample' | 'full';

/** The repository check, as a task of kind check. */
export interface RepositoryCheckService {
  start(by: Principal, mode: RepositoryCheckMode, samplePercent?: number): Promise<TaskStart>;
}

/** "Am I protected?": what the navigator shows above the generations. */
export interface SummaryService {
  get(by: Principal): Promise<ProtectionSummary>;
}

/** When the schedules run next (the composition root's schedulers). */
export interface ScheduleView {
  nextBackup(): Date | null;
  nextRehearsal(): Date | null;
}

export const REHEARSAL_SERVICE: InjectionToken<RehearsalService> = Symbol('dp.RehearsalService');
export const REPOSITORY_CHECK_SERVICE: InjectionToken<RepositoryCheckService> = Symbol('dp.RepositoryCheckService');
export const SUMMARY_SERVICE: InjectionToken<SummaryService> = Symbol('dp.SummaryService');
export const SCHEDULE_VIEW: InjectionToken<ScheduleView> = Symbol('dp.ScheduleView');
export const GENERATION_SERVICE: InjectionToken<GenerationService> = Symbol('dp.GenerationService');
export const BACKUP_RUNNER: InjectionToken<BackupRunner> = Symbol('dp.BackupRunner');
export const RESTORE_SERVICE: InjectionToken<RestoreService> = Symbol('dp.RestoreService');
export const GLOBAL_RESTORE_SERVICE: InjectionToken<GlobalRestoreService> = Symbol('dp.GlobalRestoreService');
