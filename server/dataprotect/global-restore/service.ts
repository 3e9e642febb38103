// The global restore as the API and the setup wizard see it: discover and check answer at once, start runs the
// restore as one task (progress per part, log) and records its end in the audit log.

import { inject, injectable, type InjectionToken } from 'tsyringe';
import { TaskRegistry, type TaskStart } from '../../jobs/task-registry.js';
import type { InstallationPort } from '../../host/installation.js';
import { AuditLog } from '../audit.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { GenerationNotFoundError } from '../generation/format.js';
import type { Generation, PrerequisiteReport } from '../model.js';
import type { Principal } from '../principal.js';
import type { GlobalRestoreService } from '../services.js';
import { checkGlobalRestore, type GlobalRestoreCheck } from './check.js';
import { discoverGenerations, openRepositoryAt } from './discover.js';
import { GlobalRestoreRefusedError, runGlobalRestore } from './run.js';

const TARGET = 'installation';

/** The contract's report: a warning is met, and says so. */
export function toPrerequisiteReport(c: GlobalRestoreCheck): PrerequisiteReport {
  return {
    ok: c.ok,
    checks: c.prerequisites.map((p) => ({
      id: p.id,
      ok: p.status !== 'not-met',
      message: `${p.status === 'warning' ? 'warning: ' : ''}${p.message}${p.advice ? ` — ${p.advice}` : ''}`,
    })),
  };
}

/** What a global restore needs of the installation it rebuilds. */
export const RECOVERY_INSTALLATION: InjectionToken<InstallationPort> = Symbol('dp.RecoveryInstallation');

@injectable()
export class GlobalRestores implements GlobalRestoreService {
  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(RECOVERY_INSTALLATION) private readonly installation: InstallationPort,
  ) {}

  async discover(location: string): Promise<Generation[]> {
    const repo = await openRepositoryAt(location);
    try {
      return await discoverGenerations(repo);
    } finally {
      await repo.close();
    }
  }

  async check(location: string, generationId: string): Promise<PrerequisiteReport> {
    const repo = await openRepositoryAt(location);
    try {
      return toPrerequisiteReport(await checkGlobalRestore({ repo, installation: this.installation, generation: generationId }).catch(notFound));
    } finally {
      await repo.close();
    }
  }

  async start(by: Principal, location: string, generationId: string): Promise<TaskStart> {
    const running = await this.tasks.findRunning('global-restore', TARGET);
    if (running) throw new ConflictError('a global restore is already running', running.id);
    const repo = await openRepositoryAt(location);
    let handed = false;
    try {
      // Refused at once (not as a failed task) when a prerequisite is not met.
      const c = await checkGlobalRestore({ repo, installation: this.installation, generation: generationId }).catch(notFound);
      if (!c.ok) throw new ConflictError(new GlobalRestoreRefusedError(c.prerequisites).message);
      const task = await this.tasks.start(
        { kind: 'global-restore', title: `global restore of generation ${c.generation}`, actor: { login: by.login, uid: by.uid }, target: TARGET },
        async (ctx) => {
          try {
            const r = await runGlobalRestore({
              repo, installation: this.installation, generation: c.generation, signal: ctx.signal,
              log: { info: (m) => ctx.info(m), warn: (m) => ctx.warn(m), error: (m) => ctx.error(m) },
              progress: (p) => ctx.progress({ done: p.partsDone, total: p.partsTotal, unit: 'parts', bytes: p.bytes, message: `${p.part}: ${p.files}/${p.filesTotal} files${p.etaSeconds !== null ? `, about ${p.etaSeconds} s left` : ''}` }),
            });
            await this.audit.record({ actor: by.login, action: 'global-restore.end', target: TARGET, generationId: c.generation, taskId: ctx.id, result: 'ok', detail: { parts: r.parts.length, resumed: r.resumed } });
            return { generation: r.generation, resumed: r.resumed, parts: r.parts.map((p) => ({ ...p })) };
          } catch (e) {
            await this.audit.record({ actor: by.login, action: 'global-restore.end', target: TARGET, generationId: c.generation, taskId: ctx.id, result: 'failed', detail: { error: (e as Error).message } }).catch(() => {});
            throw e;
          } finally {
            await repo.close().catch(() => {});
          }
        },
      );
      handed = true;
      return { task, alreadyRunning: false };
    } finally {
      if (!handed) await repo.close().catch(() => {});
    }
  }
}

function notFound(e: unknown): never {
  if (e instanceof GenerationNotFoundError) throw new NotFoundError(e.message);
  throw e;
}
