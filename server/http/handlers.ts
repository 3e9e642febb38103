import type { FastifyReply, FastifyRequest } from 'fastify';
import type { components } from '../../openapi/generated/dataprotect.js';
import { ForbiddenError, NotFoundError, ConflictError } from '../dataprotect/errors.js';
import { holdsRole, managesInstallation, type Principal } from '../dataprotect/principal.js';
import type { Task } from '../store/task-record.js';
import type { TaskStart } from '../jobs/task-registry.js';
import type { ApiDeps } from './deps.js';
import type { BlueMindOp, Body, Op, PathParams, Query, Reply } from './typed.js';

// One small binder per operation over the domain services: HTTP in, domain call, contract-shaped answer out.

export interface Input<K extends Op> {
  body: Body<K>;
  path: PathParams<K>;
  query: Query<K>;
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** Operations answered by hand (streams): the event stream and file downloads. */
export type RawOp = 'streamTaskEvents' | 'downloadTaskFile';

export type Binders = { [K in Exclude<Op, RawOp | BlueMindOp>]: (i: Input<K>) => Promise<Reply<K>> };

type ApiTask = components['schemas']['Task'];

export function toApiTask(t: Task): ApiTask {
  return {
    id: t.id,
    kind: t.kind,
    title: t.title,
    titlePhrase: t.titlePhrase,
    status: t.status,
    progress: {
      done: t.progress.done,
      total: t.progress.total,
      unit: t.progress.unit ?? null,
      bytes: t.progress.bytes ?? null,
      message: t.progress.message,
    },
    createdAt: t.createdAt,
    endedAt: t.endedAt,
    actor: t.actor,
    target: t.target,
    error: t.error,
    errorPhrase: t.errorPhrase,
    result: t.result,
    cancelRequested: t.cancelRequested,
  };
}

function started(s: TaskStart): { status: 202; body: components['schemas']['TaskStarted'] } {
  return { status: 202, body: { task: toApiTask(s.task), alreadyRunning: s.alreadyRunning } };
}

/** Everyone's tasks are for those who manage the installation; other callers see only the tasks they started. */
export async function visibleTask(deps: ApiDeps, principal: Principal, id: string): Promise<Task> {
  const task = await deps.tasks.get(id);
  if (!task) throw new NotFoundError(`no task ${id}`);
  if (!managesInstallation(principal) && task.actorUid !== principal.uid) {
    throw new ForbiddenError(`task ${id} was started by someone else`);
  }
  return task;
}

export function binders(deps: ApiDeps): Binders {
  return {
    getSession: async ({ principal: p }) => ({
      status: 200,
      body: {
        uid: p.uid,
        login: p.login,
        displayName: p.displayName,
        email: p.email,
        domainUid: p.domainUid,
        globalAdmin: p.globalAdmin,
        managesInstallation: managesInstallation(p),
        roles: p.roles,
        restoreOrgUnits: p.restoreOrgUnits,
      },
    }),

    listGenerations: async () => ({ status: 200, body: await deps.generations.list() }),
    getGeneration: async ({ path }) => ({ status: 200, body: await deps.generations.get(path.generationId) }),
    forgetGeneration: async ({ path, principal }) => started(await deps.generations.forget(path.generationId, principal)),
    syncGenerations: async ({ principal }) => started(await deps.generations.sync(principal)),
    protectGeneration: async ({ path, principal }) => ({ status: 200, body: await deps.generations.protect(path.generationId, principal) }),
    unprotectGeneration: async ({ path, principal }) => ({ status: 200, body: await deps.generations.unprotect(path.generationId, principal) }),

    listGenerationEntities: async ({ path, query, principal }) => ({
      status: 200,
      body: await deps.restores.listEntities(principal, path.generationId, {
        kind: query.kind,
        search: query.search,
        deleted: query.deleted,
        offset: query.offset ?? 0,
        limit: query.limit ?? 50,
      }),
    }),
    listMailFolders: async ({ path, principal }) => ({
      status: 200,
      body: await deps.restores.listMailFolders(principal, path.generationId, path.entityUid),
    }),
    listMailMessages: async ({ path, query, principal }) => ({
      status: 200,
      body: await deps.restores.listMailMessages(principal, path.generationId, path.entityUid, {
        folder: query.folder,
        search: query.search,
        offset: query.offset ?? 0,
        limit: query.limit ?? 50,
      }),
    }),
    listEntityContainers: async ({ path, principal }) => ({
      status: 200,
      body: await deps.restores.listContainers(principal, path.generationId, path.entityUid),
    }),
    listContainerItems: async ({ path, query, principal }) => ({
      status: 200,
      body: await deps.restores.listContainerItems(principal, path.generationId, path.entityUid, path.containerUid, {
        search: query.search,
        missing: query.missing,
        offset: query.offset ?? 0,
        limit: query.limit ?? 50,
      }),
    }),

    getProtectionSummary: async ({ principal }) => ({ status: 200, body: await deps.summary.get(principal) }),
    startBackup: async ({ principal }) => started(await deps.backups.start(principal, 'api')),
    startRecoveryPoint: async ({ principal }) => started(await deps.backups.startRecoveryPoint(principal)),
    startRehearsal: async ({ principal }) => started(await deps.rehearsals.start(principal)),
    checkRepository: async ({ body, principal }) => started(await deps.checks.start(principal, body.mode, body.samplePercent)),
    applyRetention: async ({ principal }) => started(await deps.backups.applyRetention(principal)),

    getSettings: async () => ({ status: 200, body: await deps.settings.get() }),
    updateSettings: async ({ body, principal }) => ({ status: 200, body: await deps.settings.update(body, principal) }),

    getRestoreCapabilities: async ({ query }) => ({ status: 200, body: await deps.restores.capabilities(query.generationId) }),
    startRestore: async ({ body, principal }) => started(await deps.restores.start(principal, body)),

    listTasks: async ({ query, principal }) => {
      const page = await deps.tasks.list({
        kind: query.kind,
        status: query.status,
        actorUid: managesInstallation(principal) ? undefined : principal.uid,
        offset: query.offset ?? 0,
        limit: query.limit ?? 50,
      });
      return { status: 200, body: { total: page.total, offset: page.offset, items: page.items.map(toApiTask) } };
    },
    getTask: async ({ path, principal }) => ({ status: 200, body: toApiTask(await visibleTask(deps, principal, path.taskId)) }),
    getTaskLog: async ({ path, query, principal }) => {
      await visibleTask(deps, principal, path.taskId);
      return { status: 200, body: await deps.tasks.log(path.taskId, query.after ?? 0, query.limit ?? 1000) };
    },
    listTaskFiles: async ({ path, principal }) => {
      await visibleTask(deps, principal, path.taskId);
      return { status: 200, body: await deps.tasks.files(path.taskId) };
    },
    cancelTask: async ({ path, principal }) => {
      const task = await visibleTask(deps, principal, path.taskId);
      if (task.status !== 'RUNNING') throw new ConflictError(`task ${task.id} has already ended (${task.status})`, task.id);
      const now = (await deps.tasks.cancel(task.id, principal.login)) ?? task;
      await deps.audit.record({ actor: principal.login, action: 'task.cancel', target: task.title, taskId: task.id, result: 'ok' });
      return { status: 202, body: toApiTask(now) };
    },

    discoverRepository: async ({ body }) => ({ status: 200, body: await deps.globalRestore.discover(body.repositoryLocation) }),
    checkGlobalRestore: async ({ body }) => ({
      status: 200,
      body: await deps.globalRestore.check(body.repositoryLocation, body.generationId, { serverMap: body.serverMap, wipe: body.wipe }),
    }),
    startGlobalRestore: async ({ body, principal }) =>
      started(await deps.globalRestore.start(principal, body.repositoryLocation, body.generationId, { serverMap: body.serverMap, wipe: body.wipe })),

    listAuditEvents: async ({ query }) => ({
      status: 200,
      body: await deps.audit.list({ action: query.action, actor: query.actor, offset: query.offset ?? 0, limit: query.limit ?? 50 }),
    }),
  };
}

/** Sends one file a task produced, as an attachment with its own content type. */
export async function downloadTaskFile(
  deps: ApiDeps,
  principal: Principal,
  params: { taskId: string; fileName: string },
  reply: FastifyReply,
): Promise<unknown> {
  await visibleTask(deps, principal, params.taskId);
  const found = await deps.tasks.openFile(params.taskId, params.fileName);
  if (!found) throw new NotFoundError(`task ${params.taskId} has no file ${params.fileName}`);
  return reply
    .code(200)
    .header('content-type', found.file.contentType)
    .header('content-length', String(found.file.size))
    .header('content-disposition', `attachment; filename="${found.file.name}"`)
    .send(found.stream);
}
