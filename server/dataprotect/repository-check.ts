// "Check the repository" from the console: the engine's check of the configured repository as a task of kind
// `check`, under a shared repository lock (a prune, which takes it exclusively, waits). Damage found ends the
// task FAILED with the findings kept in its result, so that the navigator shows them and the alerts mail them.

import { inject, injectable } from 'tsyringe';
import { check } from '../engine/index.js';
import { TaskFailedError, TaskRegistry, type TaskStart } from '../jobs/task-registry.js';
import { AuditLog } from './audit.js';
import { NotFoundError } from './errors.js';
import { openLocation } from './generation/repository.js';
import type { Principal } from './principal.js';
import type { RepositoryCheckMode, RepositoryCheckService } from './services.js';
import { SettingsService } from './settings.js';
import { taskTitle } from './task-titles.js';

const TARGET = 'repository';
const DEFAULT_SAMPLE_PERCENT = 10;
const MAX_LISTED = 50;

@injectable()
export class RepositoryChecks implements RepositoryCheckService {
  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(SettingsService) private readonly settings: SettingsService,
    @inject(AuditLog) private readonly audit: AuditLog,
  ) {}

  async start(by: Principal, mode: RepositoryCheckMode, samplePercent = DEFAULT_SAMPLE_PERCENT): Promise<TaskStart> {
    const running = await this.tasks.findRunning('check', TARGET);
    if (running) return { task: running, alreadyRunning: true };
    const { repositoryLocation } = await this.settings.get();
    const repo = await openLocation(repositoryLocation);
    if (!repo) throw new NotFoundError(`no repository at ${repositoryLocation}: there is nothing to check yet`);
    const title = mode === 'sample' ? taskTitle('check.sample', { percent: samplePercent }) : taskTitle(mode === 'full' ? 'check.full' : 'check.structure');
    try {
      const task = await this.tasks.start({ kind: 'check', ...title, actor: { login: by.login, uid: by.uid }, target: TARGET }, async (ctx) => {
        const started = Date.now();
        try {
          const lock = await repo.lock(false, 'check from the console', (m) => ctx.info(m));
          try {
            ctx.info(`checking ${repositoryLocation}: ${mode === 'full' ? 'every pack read' : mode === 'sample' ? `${samplePercent}% of the packs read` : 'structure'}`);
            const r = await check(repo, {
              readData: mode === 'full',
              readDataSubset: mode === 'sample' ? samplePercent : undefined,
              progress: { update: (phase, done, total) => ctx.progress({ done, total, unit: phase, message: `${phase} ${done}/${total}` }) },
            });
            if (ctx.signal.aborted) throw new Error('cancelled');
            for (const w of r.warnings.slice(0, MAX_LISTED)) ctx.warn(w);
            for (const e of r.errors.slice(0, MAX_LISTED)) ctx.error(e);
            const result = {
              mode, samplePercent: mode === 'sample' ? samplePercent : null, ok: r.errors.length === 0,
              errors: r.errors.length, warnings: r.warnings.length, snapshots: r.snapshots, trees: r.trees, packs: r.packs,
              packsRead: r.packsRead, blobs: r.blobs, firstErrors: r.errors.slice(0, MAX_LISTED), durationMs: Date.now() - started,
            };
            await this.audit.record({ actor: by.login, action: 'repository.check', target: repositoryLocation, taskId: ctx.id, result: result.ok ? 'ok' : 'failed', detail: { mode, errors: result.errors } });
            const summary = `${r.snapshots} snapshots, ${r.trees} trees, ${r.blobs} data blobs, ${r.packs} packs checked${r.packsRead ? `, ${r.packsRead} read in full` : ''}`;
            if (!result.ok) throw new TaskFailedError(`the repository is damaged: ${r.errors.length} error(s) (${summary}); the first: ${r.errors[0]}`, result);
            ctx.progress({ message: `${summary}: no errors` });
            return result;
          } finally {
            await lock.release();
          }
        } finally {
          await repo.close().catch(() => {});
        }
      });
      return { task, alreadyRunning: false };
    } catch (err) {
      await repo.close().catch(() => {});
      throw err;
    }
  }
}
