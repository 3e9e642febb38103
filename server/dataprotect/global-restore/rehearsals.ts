// The restore rehearsal as the console and its schedule run it: the newest valid generation of the configured
// repository rehearsed in a sandbox (sandbox.ts) as one task of kind `rehearsal`, with progress per part, a log,
// and a result that gives each part's verdict and the duration. A rehearsal whose restore differs from the
// generation, or cannot be done, ends FAILED with that result kept: the alert monitor mails the administrators.

import path from 'node:path';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import type { InstallationPort } from '../../host/installation.js';
import { TaskFailedError, TaskRegistry, type TaskStart } from '../../jobs/task-registry.js';
import { AuditLog } from '../audit.js';
import { ConflictError } from '../errors.js';
import { findGeneration, GenerationNotFoundError } from '../generation/format.js';
import { openLocation } from '../generation/repository.js';
import { SCHEDULER_ACTOR } from '../principal.js';
import type { RehearsalService, Requester } from '../services.js';
import { SettingsService } from '../settings.js';
import { taskTitle } from '../task-titles.js';
import { rehearseGlobalRestore, type RehearsalReport } from './sandbox.js';
import { RECOVERY_INSTALLATION } from './service.js';

/** Where rehearsals make their sandboxes (one new folder per rehearsal, removed afterwards). */
export const REHEARSAL_DIR: InjectionToken<string> = Symbol('dp.RehearsalDir');

const TARGET = 'installation';

/** A task of kind rehearsal's result. */
export interface RehearsalResult {
  generationId: string;
  ok: boolean;
  durationMs: number;
  /** Why the restore into the sandbox stopped, when it did. */
  failure: string | null;
  parts: { server: string; tag: string; verdict: 'same' | 'differs'; compared: number; differences: string[] }[];
  removed: boolean;
}

export function rehearsalResult(r: RehearsalReport): RehearsalResult {
  return {
    generationId: r.generation,
    ok: r.ok,
    durationMs: r.durationMs,
    failure: r.failure,
    parts: r.parts.map((p) => ({ server: p.server, tag: p.tag, verdict: p.differences.length ? 'differs' : 'same', compared: p.compared, differences: p.differences })),
    removed: r.removed,
  };
}

@injectable()
export class Rehearsals implements RehearsalService {
  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(SettingsService) private readonly settings: SettingsService,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(RECOVERY_INSTALLATION) private readonly installation: InstallationPort,
    @inject(REHEARSAL_DIR) private readonly dir: string,
  ) {}

  async start(by: Requester): Promise<TaskStart> {
    const running = await this.tasks.findRunning('rehearsal', TARGET);
    if (running) return { task: running, alreadyRunning: true };
    const { repositoryLocation } = await this.settings.get();
    const repo = await openLocation(repositoryLocation);
    if (!repo) throw new ConflictError(`there is no repository at ${repositoryLocation} yet: run a backup first, then rehearse its restore`);
    let handed = false;
    try {
      // Refused at once, not as a failed task: there is nothing to rehearse yet.
      const g = await findGeneration(repo, 'latest').catch((e: unknown) => {
        if (e instanceof GenerationNotFoundError) throw new ConflictError(`no valid generation to rehearse in ${repositoryLocation}: run a backup first`);
        throw e;
      });
      const generation = g.record.id;
      const actor = 'scheduler' in by ? { login: SCHEDULER_ACTOR, uid: null } : { login: by.login, uid: by.uid };
      const task = await this.tasks.start({ kind: 'rehearsal', ...taskTitle('rehearsal', { generation }), actor, target: TARGET }, async (ctx) => {
        try {
          const sandbox = path.join(this.dir, `rehearsal-${ctx.id}`);
          ctx.info(`rehearsal of generation ${generation} in ${sandbox} (scratch databases beside the live ones; the installation is not touched)`);
          const report = await rehearseGlobalRestore({
            repo, installation: this.installation, generation, dir: sandbox,
            log: { info: (m) => ctx.info(m), warn: (m) => ctx.warn(m), error: (m) => ctx.error(m) },
            progress: (p) => ctx.progress({ done: p.partsDone, total: p.partsTotal, unit: 'parts', bytes: p.bytes, message: `${p.part}: ${p.files}/${p.filesTotal} files` }),
          });
          const result = rehearsalResult(report);
          for (const p of result.parts) {
            if (p.verdict === 'same') ctx.info(`${p.server} ${p.tag}: same as the generation (${p.compared} compared)`);
            else for (const d of p.differences) ctx.error(`${p.server} ${p.tag}: ${d}`);
          }
          await this.audit.record({
            actor: actor.login, action: 'rehearsal.end', target: TARGET, generationId: generation, taskId: ctx.id,
            result: result.ok ? 'ok' : 'failed', detail: { durationMs: result.durationMs, failure: result.failure },
          });
          // A restore that stopped before comparing keeps its last progress (how far it got), not "0 of 0 parts".
          if (result.failure) ctx.progress({ message: 'the restore stopped' });
          else ctx.progress({ done: result.parts.length, total: result.parts.length, unit: 'parts', message: result.ok ? 'every part restored the same' : 'the restore differs' });
          if (!result.ok) {
            const differing = result.parts.filter((p) => p.verdict === 'differs').map((p) => `${p.server} ${p.tag}`);
            throw new TaskFailedError(
              result.failure
                ? `The rehearsal of generation ${generation} could not restore it: ${result.failure}`
                : `The rehearsal of generation ${generation} restored parts that differ from it: ${differing.join(', ')}`,
              { ...result },
            );
          }
          return { ...result };
        } finally {
          await repo.close().catch(() => {});
        }
      });
      handed = true;
      return { task, alreadyRunning: false };
    } finally {
      if (!handed) await repo.close().catch(() => {});
    }
  }
}
