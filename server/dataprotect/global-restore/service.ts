// The global restore as the API and the setup wizard see it: discover and check answer at once, start runs the
// restore as one task (progress per part, log) and records its end in the audit log.

import { inject, injectable, type InjectionToken } from 'tsyringe';
import { TaskRegistry, type TaskStart } from '../../jobs/task-registry.js';
import type { InstallationPort } from '../../host/installation.js';
import { AuditLog } from '../audit.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { GenerationNotFoundError } from '../generation/format.js';
import type { PartAgents } from '../generation/part-agents.js';
import { PART_AGENTS } from '../generation/tokens.js';
import type { Generation, GlobalRestoreOptions, PrerequisiteReport } from '../model.js';
import type { Principal } from '../principal.js';
import type { GlobalRestoreService } from '../services.js';
import { checkGlobalRestore, type GlobalRestoreCheck } from './check.js';
import { discoverGenerations, openRepositoryAt } from './discover.js';
import { GlobalRestoreRefusedError, runGlobalRestore } from './run.js';
import { taskTitle } from '../task-titles.js';

const TARGET = 'installation';

/** The contract's report: each prerequisite with its status and advice (`ok`: met or warning), the installation, the servers. */
export function toPrerequisiteReport(c: GlobalRestoreCheck, productVersion: string): PrerequisiteReport {
  return {
    ok: c.ok,
    generationId: c.generation,
    checks: c.prerequisites.map((p) => ({ id: p.id, ok: p.status !== 'not-met', status: p.status, message: p.message, advice: p.advice ?? null })),
    installation: { blank: c.content ? c.content.length === 0 : null, content: c.content ?? [], productVersion },
    servers: c.servers.map((s) => ({
      from: { uid: s.from.uid, address: s.from.address },
      to: s.to ? { uid: s.to.uid, address: s.to.address } : null,
      explicit: s.explicit,
      problem: s.problem,
    })),
    targetServers: c.targetServers.map((t) => ({ uid: t.uid, address: t.address })),
  };
}

/** The request's server map as the domain takes it; a server mapped twice is the caller's mistake. */
export function serverMapOf(pairs: GlobalRestoreOptions['serverMap']): Map<string, string> {
  const out = new Map<string, string>();
  for (const { from, to } of pairs ?? []) {
    if (out.has(from)) throw new InvalidInputError('serverMap', `maps ${from} twice`);
    out.set(from, to);
  }
  return out;
}

/** What a global restore needs of the installation it rebuilds. */
export const RECOVERY_INSTALLATION: InjectionToken<InstallationPort> = Symbol('dp.RecoveryInstallation');

@injectable()
export class GlobalRestores implements GlobalRestoreService {
  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(RECOVERY_INSTALLATION) private readonly installation: InstallationPort,
    @inject(PART_AGENTS, { isOptional: true }) private readonly agents?: PartAgents,
  ) {}

  async discover(location: string): Promise<Generation[]> {
    const repo = await openRepositoryAt(location);
    try {
      return await discoverGenerations(repo);
    } finally {
      await repo.close();
    }
  }

  async check(location: string, generationId: string, options: GlobalRestoreOptions = {}): Promise<PrerequisiteReport> {
    const servers = serverMapOf(options.serverMap);
    const repo = await openRepositoryAt(location);
    try {
      const c = await checkGlobalRestore({ repo, installation: this.installation, generation: generationId, servers, wipe: options.wipe }).catch(notFound);
      return toPrerequisiteReport(c, this.installation.productVersion);
    } finally {
      await repo.close();
    }
  }

  async start(by: Principal, location: string, generationId: string, options: GlobalRestoreOptions = {}): Promise<TaskStart> {
    const servers = serverMapOf(options.serverMap);
    const wipe = Boolean(options.wipe);
    const running = await this.tasks.findRunning('global-restore', TARGET);
    if (running) throw new ConflictError('a global restore is already running', running.id);
    const repo = await openRepositoryAt(location);
    let handed = false;
    try {
      // Refused at once (not as a failed task) when a prerequisite is not met.
      const c = await checkGlobalRestore({ repo, installation: this.installation, generation: generationId, servers, wipe }).catch(notFound);
      if (!c.ok) throw new ConflictError(new GlobalRestoreRefusedError(c.prerequisites).message);
      const task = await this.tasks.start(
        { kind: 'global-restore', ...taskTitle(wipe ? 'globalRestoreWipe' : 'globalRestore', { generation: c.generation }), actor: { login: by.login, uid: by.uid }, target: TARGET },
        async (ctx) => {
          try {
            const r = await runGlobalRestore({
              repo, installation: this.installation, generation: c.generation, servers, wipe, signal: ctx.signal, agents: this.agents,
              log: { info: (m) => ctx.info(m), warn: (m) => ctx.warn(m), error: (m) => ctx.error(m) },
              progress: (p) => ctx.progress({ done: p.partsDone, total: p.partsTotal, unit: 'parts', bytes: p.bytes, message: `${p.part}: ${p.files}/${p.filesTotal} files${p.etaSeconds !== null ? `, about ${p.etaSeconds} s left` : ''}` }),
            });
            ctx.progress({ done: r.parts.length, total: r.parts.length, unit: 'parts', message: `every part of generation ${r.generation} restored` });
            await this.audit.record({ actor: by.login, action: 'global-restore.end', target: TARGET, generationId: c.generation, taskId: ctx.id, result: 'ok', detail: { parts: r.parts.length, resumed: r.resumed, wipe, servers: Object.fromEntries(servers) } });
            return { generation: r.generation, resumed: r.resumed, alreadyRestored: r.alreadyRestored, parts: r.parts.map((p) => ({ ...p })), addressChanges: r.addressChanges, warnings: r.warnings };
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
