// The plugin's BackupRunner and GenerationService: backup runs, retention, forget and sync as tasks, one at a
// time across the cluster (a PostgreSQL advisory lock), with the plugin's tables as a cache of the repository.

import { inject, injectable } from 'tsyringe';
import type { Repository } from '../../engine/index.js';
import type { HostPort } from '../../host/port.js';
import { ClusterCoordinator } from '../../jobs/cluster.js';
import { TaskRegistry, type TaskActor, type TaskBody, type TaskContext, type TaskStart } from '../../jobs/task-registry.js';
import type { TaskKind } from '../../store/task-record.js';
import { AuditLog } from '../audit.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Generation } from '../model.js';
import { SCHEDULER_ACTOR, type Principal } from '../principal.js';
import type { BackupRunner, GenerationService, Requester } from '../services.js';
import { SettingsService, type Settings } from '../settings.js';
import { GenerationCache } from './cache.js';
import {
  deleteGeneration, GenerationNotFoundError, readGenerations, refreshLatest, toGeneration, type GenerationRecord, type StoredGeneration,
} from './format.js';
import { copyGenerations } from './copy.js';
import { setProtection } from './protection.js';
import { openLocation, snapshotFingerprint } from './repository.js';
import { applyRetention, checkRetentionPolicy } from './retention.js';
import { runGeneration } from './run.js';
import { BACKUP_CONFIG, HOST_PORT, OWN_PARTS, PART_AGENTS, type BackupConfig } from './tokens.js';
import type { PartAgents } from './part-agents.js';
import { taskTitle } from '../task-titles.js';

type Title = ReturnType<typeof taskTitle>;

/** The advisory lock every run, retention, forget and sync takes: they never overlap anywhere in the cluster. */
export const BACKUP_LOCK = 'dataprotect-backup';
/** How long a backup waits for a mail recovery point in progress before it says the lock is busy. */
const RECOVERY_POINT_WAIT_MS = 10 * 60_000;

function actorOf(by: Requester): TaskActor {
  return 'scheduler' in by ? { login: SCHEDULER_ACTOR, uid: null } : { login: by.login, uid: by.uid };
}

function taskLog(ctx: TaskContext) {
  return { info: (m: string) => ctx.info(m), warn: (m: string) => ctx.warn(m), error: (m: string) => ctx.error(m) };
}

export function retentionPolicy(s: Settings) {
  return { days: s.retentionDays, weekly: s.keepWeekly, monthly: s.keepMonthly, recoveryPointDays: s.recoveryPointRetentionDays };
}

@injectable()
export class RepositoryBackups implements BackupRunner, GenerationService {
  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(ClusterCoordinator) private readonly cluster: ClusterCoordinator,
    @inject(SettingsService) private readonly settings: SettingsService,
    @inject(GenerationCache) private readonly cache: GenerationCache,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(HOST_PORT) private readonly host: HostPort,
    @inject(BACKUP_CONFIG) private readonly config: BackupConfig,
    @inject(PART_AGENTS, { isOptional: true }) private readonly remote?: PartAgents,
    @inject(OWN_PARTS, { isOptional: true }) private readonly own?: PartAgents,
  ) {}

  /** Each server's agent, else the backup process of this server when there is one (else: in-process). */
  private get agents(): PartAgents | undefined {
    const { remote, own } = this;
    return own ? (s) => remote?.(s) ?? own(s) : remote;
  }

  /**
   * Starts `body` as a task while holding the cluster lock for the whole task. Resolves once the task exists, or
   * with null when another node (or task here) holds the lock.
   */
  private async startLocked(kind: TaskKind, title: Title, by: Requester, target: string | null, body: TaskBody): Promise<TaskStart | null> {
    // A task that has just ended releases the lock a moment later: try again for a little while, unless some
    // task of ours is really running.
    for (let attempt = 0; ; attempt++) {
      const started = await this.tryStartLocked(kind, title, by, target, body);
      if (started || attempt >= 20 || (await this.runningTask())) return started;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async runningTask() {
    for (const k of ['backup', 'recovery-point', 'retention', 'forget', 'sync', 'copy'] as const) {
      const t = await this.tasks.findRunning(k);
      if (t) return t;
    }
    return null;
  }

  private tryStartLocked(kind: TaskKind, title: Title, by: Requester, target: string | null, body: TaskBody): Promise<TaskStart | null> {
    return new Promise<TaskStart | null>((resolve, reject) => {
      let started = false;
      this.cluster
        .withLock(BACKUP_LOCK, async () => {
          const task = await this.tasks.start({ kind, ...title, actor: actorOf(by), target }, body);
          started = true;
          resolve({ task, alreadyRunning: false });
          await this.tasks.whenDone(task.id);
        })
        .then(
          (r) => {
            if (!r.acquired) resolve(null);
          },
          (err) => {
            if (!started) reject(err);
          },
        );
    });
  }

  private async busy(what: string): Promise<never> {
    const running = await this.runningTask();
    throw new ConflictError(`${what}: ${running ? `${running.title} is running (task ${running.id})` : 'a backup, retention or forget holds the lock'}; try again when it has finished`, running?.id);
  }

  // --- BackupRunner --------------------------------------------------------------------------------------------

  async start(by: Requester, trigger: 'api' | 'schedule' | 'cli'): Promise<TaskStart> {
    const running = await this.tasks.findRunning('backup');
    if (running) return { task: running, alreadyRunning: true };
    await this.afterRecoveryPoint();
    const title = taskTitle(trigger === 'schedule' ? 'scheduledBackup' : 'backup');
    const started = await this.startLocked('backup', title, by, null, (ctx) => this.backup(ctx, trigger));
    if (started) {
      if (trigger === 'schedule') this.copyOffsiteAfter(started.task.id, by);
      return started;
    }
    // Another node won the lock a moment ago: its task appears in the shared table.
    for (let i = 0; i < 30; i++) {
      const other = await this.tasks.findRunning('backup');
      if (other) return { task: other, alreadyRunning: true };
      if (i === 0 && (await this.runningTask())) break; // a retention, forget or sync holds it
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.busy('cannot start a backup');
  }

  /** A recovery point takes seconds: a backup waits for the one in progress (anywhere) rather than fail. */
  private async afterRecoveryPoint(): Promise<void> {
    const deadline = Date.now() + RECOVERY_POINT_WAIT_MS;
    for (let t = await this.tasks.findRunning('recovery-point'); t && Date.now() < deadline; t = await this.tasks.findRunning('recovery-point')) {
      await Promise.race([this.tasks.whenDone(t.id), new Promise((r) => setTimeout(r, 1000))]);
    }
  }

  async startRecoveryPoint(by: Requester): Promise<TaskStart> {
    const running = await this.tasks.findRunning('recovery-point');
    if (running) return { task: running, alreadyRunning: true };
    const started = await this.startLocked('recovery-point', taskTitle('recoveryPoint'), by, null, (ctx) => this.recoveryPoint(ctx));
    if (started) return started;
    const other = await this.tasks.findRunning('recovery-point');
    if (other) return { task: other, alreadyRunning: true };
    return this.busy('cannot take a mail recovery point');
  }

  private async recoveryPoint(ctx: TaskContext): Promise<Record<string, unknown>> {
    const s = await this.settings.get();
    const repo = await openLocation(s.repositoryLocation, { signal: ctx.signal });
    if (!repo) throw new Error(`no repository at ${s.repositoryLocation}: a recovery point follows a first nightly generation`);
    try {
      const r = await runGeneration({
        repo, host: this.host, trigger: 'recovery-point', productVersion: this.config.productVersion, agents: this.agents, repositoryLocation: s.repositoryLocation,
        backupEmails: s.backupEmails, backupArchivedEmails: s.backupArchivedEmails, skippedTags: s.skippedTags,
        log: taskLog(ctx), signal: ctx.signal,
        progress: (p) => ctx.progress({ done: p.partsDone, total: p.partsTotal, unit: 'parts', bytes: p.bytes, message: p.current ? `backing up ${p.current}` : null }),
      });
      await this.cache.upsert(s.repositoryLocation, r.generation);
      await this.cache.remove(s.repositoryLocation, r.cleaned);
      const added = r.generation.parts.reduce((n, p) => n + p.sizeAdded, 0);
      ctx.progress({ message: `recovery point ${r.generation.id}: ${r.runStatus}` });
      if (ctx.signal.aborted) throw new Error(`cancelled; recovery point ${r.generation.id} is INVALID`);
      if (r.runStatus === 'ERROR') {
        const bad = r.generation.parts.filter((p) => p.status === 'INVALID').map((p) => `${p.server} ${p.tag}: ${p.messages[0] ?? 'failed'}`);
        throw new Error(`recovery point ${r.generation.id} finished with ERROR (${bad.join('; ')})`);
      }
      return { generationId: r.generation.id, status: r.generation.status, runStatus: r.runStatus, parts: r.generation.parts.length, bytesAdded: added };
    } finally {
      await repo.close();
    }
  }

  private async backup(ctx: TaskContext, trigger: 'api' | 'schedule' | 'cli'): Promise<Record<string, unknown>> {
    const s = await this.settings.get();
    checkRetentionPolicy(retentionPolicy(s));
    const repo = await openLocation(s.repositoryLocation, { create: true, signal: ctx.signal });
    if (!repo) throw new Error(`no repository at ${s.repositoryLocation}`);
    const log = taskLog(ctx);
    try {
      log.info(`repository ${s.repositoryLocation}`);
      const r = await runGeneration({
        repo, host: this.host, trigger, productVersion: this.config.productVersion, agents: this.agents, repositoryLocation: s.repositoryLocation,
        backupEmails: s.backupEmails, backupArchivedEmails: s.backupArchivedEmails, skippedTags: s.skippedTags,
        retention: retentionPolicy(s), postBackup: { script: s.postBackupScript, timeoutMs: this.config.hookTimeoutMs },
        log, signal: ctx.signal,
        progress: (p) => ctx.progress({ done: p.partsDone, total: p.partsTotal, unit: 'parts', bytes: p.bytes, message: p.current ? `backing up ${p.current}` : null }),
      });
      const loc = s.repositoryLocation;
      await this.cache.upsert(loc, r.generation);
      await this.cache.remove(loc, [...r.cleaned, ...(r.retention?.remove.map((x) => x.id) ?? [])]);
      ctx.progress({ message: `generation ${r.generation.id}: ${r.runStatus}` });
      const result = { generationId: r.generation.id, status: r.generation.status, runStatus: r.runStatus, parts: r.generation.parts.length };
      if (ctx.signal.aborted) throw new Error(`cancelled; generation ${r.generation.id} is INVALID`);
      if (r.runStatus === 'ERROR' || r.runStatus === 'POSTOPS_ERROR') {
        const bad = r.generation.parts.filter((p) => p.status === 'INVALID').map((p) => `${p.server} ${p.tag}: ${p.messages[0] ?? 'failed'}`);
        throw new Error(`generation ${r.generation.id} finished with ${r.runStatus}${bad.length ? ` (${bad.join('; ')})` : ''}${r.runStatus === 'POSTOPS_ERROR' ? ` (${r.generation.messages.at(-1)})` : ''}`);
      }
      return result;
    } finally {
      await repo.close();
    }
  }

  /**
   * Once the nightly run `taskId` has succeeded, its generation is copied to the off-site location when one is set:
   * a task of kind copy, under the same cluster lock (no retention deletes what is being copied).
   */
  private copyOffsiteAfter(taskId: string, by: Requester): void {
    void (async () => {
      const done = await this.tasks.whenDone(taskId);
      const generation = done?.status === 'SUCCEEDED' ? done.result?.generationId : undefined;
      if (typeof generation !== 'string') return;
      const location = (await this.settings.get()).offsiteCopyLocation;
      if (!location) return;
      const started = await this.startLocked('copy', taskTitle('copy', { generation }), by, generation, (ctx) => this.copyOffsite(ctx, generation, location));
      if (!started) {
        // Someone started other work on the repository in between: the copy is a task of its own, recorded failed.
        const task = await this.tasks.start({ kind: 'copy', ...taskTitle('copy', { generation }), actor: actorOf(by), target: generation }, async () => {
          throw new Error(`the off-site copy of generation ${generation} did not start: other work held the repository; the next night's copy carries the new generation`);
        });
        await this.tasks.whenDone(task.id);
      }
    })().catch(() => {
      // The task registry records what failed; nothing more to say here.
    });
  }

  private async copyOffsite(ctx: TaskContext, generation: string, location: string): Promise<Record<string, unknown>> {
    const s = await this.settings.get();
    const from = await openLocation(s.repositoryLocation, { signal: ctx.signal });
    if (!from) throw new NotFoundError(`no repository at ${s.repositoryLocation}`);
    let to: Repository | null = null;
    try {
      to = await openLocation(location, { create: true, signal: ctx.signal });
      if (!to) throw new Error(`no repository at ${location}`);
      ctx.info(`copying generation ${generation} from ${s.repositoryLocation} to ${location}`);
      const r = await copyGenerations({
        from, to, generations: [generation],
        notice: (m) => ctx.info(m),
        progress: (p) => ctx.progress({ done: p.snapshotsDone, total: p.snapshotsTotal, bytes: p.bytesAdded, message: `copying generation ${generation} to ${location}` }),
      });
      const outcome = r.generations[0]?.outcome === 'present' ? 'was already there' : 'copied';
      ctx.info(`generation ${generation} ${outcome}: ${r.blobsNew} new blobs, ${r.bytesAdded} bytes written; verified ${r.verified.snapshots} snapshots, ${r.verified.blobs} blobs`);
      if (ctx.signal.aborted) throw new Error(`cancelled; the next copy carries on where this one stopped`);
      return { generationId: generation, location, bytesAdded: r.bytesAdded, blobsNew: r.blobsNew, reencoded: r.reencoded, verifiedBlobs: r.verified.blobs };
    } finally {
      await to?.close();
      await from.close();
    }
  }

  async applyRetention(by: Requester): Promise<TaskStart> {
    const started = await this.startLocked('retention', taskTitle('retention'), by, null, async (ctx) => {
      const s = await this.settings.get();
      const repo = await openLocation(s.repositoryLocation, { signal: ctx.signal });
      if (!repo) return { kept: 0, removed: 0 };
      try {
        const r = await applyRetention(repo, retentionPolicy(s), { log: taskLog(ctx) });
        await this.cache.remove(s.repositoryLocation, r.remove.map((x) => x.id));
        await refreshLatest(repo);
        if (r.pruneError) throw new Error(`generations deleted, but the prune failed: ${r.pruneError}`);
        return { kept: r.keep.length, removed: r.remove.length, removedIds: r.remove.map((x) => x.id) };
      } finally {
        await repo.close();
      }
    });
    return started ?? this.busy('cannot apply retention');
  }

  // --- GenerationService ---------------------------------------------------------------------------------------

  async list(): Promise<Generation[]> {
    const s = await this.settings.get();
    // The cache and its fingerprint in one read: the console polls this list, during backups too, and each
    // database round trip is a wait for the database's process and then this one's to be scheduled.
    const cached = await this.cache.read(s.repositoryLocation);
    if (cached && !(await this.stale(s.repositoryLocation, cached.fingerprint))) return cached.records.map(toGeneration);
    await this.rebuild(s.repositoryLocation);
    return ((await this.cache.list(s.repositoryLocation)) ?? []).map(toGeneration);
  }

  /** Rebuilds the cache when the repository changed behind it (see stale). */
  private async fresh(location: string): Promise<void> {
    const stored = await this.cache.fingerprint(location);
    if (stored === null || (await this.stale(location, stored))) await this.rebuild(location);
  }

  /**
   * Whether the repository changed behind the cache synced at `stored` (a CLI run, another tool, a restored share):
   * the snapshot file names are compared with those of the last sync, which costs a directory listing.
   */
  private async stale(location: string, stored: string): Promise<boolean> {
    // While a run writes (a backup or a recovery point), its part snapshots change the fingerprint all along, and
    // its generation is not listed before it ends (the run then adds it to the cache): reading the whole repository
    // at every request meanwhile would slow the API for nothing. The first read after the run sees the new
    // fingerprint and syncs.
    if (await this.runWriting()) return false;
    return stored !== (await snapshotFingerprint(location));
  }

  /** The run writing a generation now, if any: a backup or a mail recovery point. */
  private async runWriting() {
    return this.tasks.findRunning(['backup', 'recovery-point']);
  }

  async get(id: string): Promise<Generation> {
    const s = await this.settings.get();
    await this.fresh(s.repositoryLocation);
    const r = await this.cache.get(s.repositoryLocation, id);
    if (!r) throw new NotFoundError(`no generation ${id}`);
    return toGeneration(r);
  }

  async forget(id: string, by: Principal): Promise<TaskStart> {
    await this.get(id);
    const started = await this.startLocked('forget', taskTitle('forget', { generation: id }), by, id, async (ctx) => {
      const s = await this.settings.get();
      const repo = await openLocation(s.repositoryLocation, { signal: ctx.signal });
      if (!repo) throw new NotFoundError(`no repository at ${s.repositoryLocation}`);
      try {
        const g = (await readGenerations(repo)).find((x) => x.record.id === id);
        if (g) {
          const n = await deleteGeneration(repo, g, (m) => ctx.info(m));
          ctx.info(`generation ${id}: ${n} snapshot files deleted; the next prune reclaims the space`);
          await refreshLatest(repo);
        } else ctx.warn(`generation ${id} is no longer in the repository`);
        await this.cache.remove(s.repositoryLocation, [id]);
        await this.audit.record({ actor: by.login, action: 'generation.forget', target: id, generationId: id, taskId: ctx.id, result: 'ok' });
        return { generationId: id, deleted: Boolean(g) };
      } finally {
        await repo.close();
      }
    });
    return started ?? this.busy(`cannot forget generation ${id}`);
  }

  protect(id: string, by: Principal): Promise<Generation> {
    return this.setProtected(id, true, by);
  }

  unprotect(id: string, by: Principal): Promise<Generation> {
    return this.setProtected(id, false, by);
  }

  /** At once, not a task (one small record written), under the backup lock so that no retention runs meanwhile. */
  private async setProtected(id: string, protect: boolean, by: Principal): Promise<Generation> {
    await this.get(id);
    const s = await this.settings.get();
    const action = protect ? 'protect' : 'unprotect';
    const work = async () => {
      const repo = await openLocation(s.repositoryLocation);
      if (!repo) throw new NotFoundError(`no repository at ${s.repositoryLocation}`);
      try {
        return await setProtection(repo, id, protect);
      } catch (err) {
        if (err instanceof GenerationNotFoundError) throw new NotFoundError(err.message);
        throw err;
      } finally {
        await repo.close();
      }
    };
    // A task that has just ended releases the lock a moment later: try again for a little while.
    for (let attempt = 0; ; attempt++) {
      const r = await this.cluster.withLock(BACKUP_LOCK, work);
      if (r.acquired) {
        await this.cache.upsert(s.repositoryLocation, r.value.record);
        if (r.value.changed) {
          await this.audit.record({ actor: by.login, action: `generation.${action}`, target: id, generationId: id, result: 'ok' });
        }
        return toGeneration(r.value.record);
      }
      if (attempt >= 20 || (await this.runningTask())) return this.busy(`cannot ${action} generation ${id}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async sync(by: Principal): Promise<TaskStart> {
    const started = await this.startLocked('sync', taskTitle('sync'), by, null, async (ctx) => {
      const s = await this.settings.get();
      const records = await this.rebuild(s.repositoryLocation);
      ctx.info(`${records.length} generations read from ${s.repositoryLocation}`);
      return { generations: records.length };
    });
    return started ?? this.busy('cannot sync with the repository');
  }

  /** Reads the repository and replaces the cache with what it holds. */
  private async rebuild(location: string): Promise<GenerationRecord[]> {
    const fingerprint = await snapshotFingerprint(location);
    const repo = await openLocation(location, { loadIndex: false });
    let gens: StoredGeneration[] = [];
    if (repo) {
      try {
        gens = await readGenerations(repo);
      } finally {
        await repo.close();
      }
    }
    // A generation being written right now reads as interrupted: leave it out while a backup runs.
    const running = await this.runWriting();
    const records = gens.filter((g) => !(g.interrupted && running)).map((g) => g.record);
    // While a run writes, the fingerprint is not kept: the next read looks again.
    await this.cache.replace(location, records, running ? null : fingerprint);
    return records;
  }
}
