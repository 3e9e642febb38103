import type { FastifyReply, FastifyRequest } from 'fastify';
import type { components } from '../../openapi/generated/dataprotect.js';
import { NotFoundError } from '../dataprotect/errors.js';
import type { Generation, Restorable } from '../dataprotect/model.js';
import type { Principal } from '../dataprotect/principal.js';
import type { RestoreOperation } from '../dataprotect/restore-capabilities.js';
import { taskTitle } from '../dataprotect/task-titles.js';
import type { Task } from '../store/task-record.js';
import type { ApiDeps } from './deps.js';
import { visibleTask, type Input } from './handlers.js';
import { problem, ProblemError } from './problem.js';
import type { BlueMindOp, Reply } from './typed.js';

// BlueMind's IDataProtect and ITask (tag bluemind-compat), so that scripts written for BlueMind keep working:
// BlueMind's paths, verbs and JSON shapes over the same domain services and roles as the rest of the API.

type S = components['schemas'];

/** Operations answered by hand: the task log stream. */
export type BlueMindRawOp = 'bmTaskLog';

export type BlueMindBinders = { [K in Exclude<BlueMindOp, BlueMindRawOp>]: (i: Input<K>) => Promise<Reply<K>> };

/** Where BlueMind's task API is mounted (ITask's @Path under /api), as the contract's path-level servers say. */
export const BLUEMIND_TASKS_MOUNT = '/api/tasks';

const MIB = 1024 * 1024;
const BODY_LIMIT = 64 * 1024;
const LOG_POLL_MS = 300;

const generationRef = (id: string) => `generation:${id}`;
const partRef = (generationId: string, p: { server: string; tag: string }) => `part:${generationId}/${p.server}/${p.tag}`;

async function repository(deps: ApiDeps): Promise<string> {
  return (await deps.settings.get()).repositoryLocation;
}

/** This API's id of a generation named by BlueMind's number (digits) or by this API's id. */
async function resolveGeneration(deps: ApiDeps, ref: string | number): Promise<string> {
  const text = String(ref);
  if (!/^[0-9]+$/.test(text)) return text;
  const n = Number(text);
  const found = n <= 2147483647 ? await deps.numbers.refOf(await repository(deps), n) : null;
  if (!found?.startsWith('generation:')) throw new NotFoundError(`no generation ${text}`);
  return found.slice('generation:'.length);
}

const millis = (iso: string) => Date.parse(iso);

/** `5.1.0` → BlueMind's VersionInfo; a version without three numbers keeps its text as the display name. */
function versionInfo(v: string): S['BmVersionInfo'] {
  const m = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v);
  return { major: m?.[1] ?? '0', minor: m?.[2] ?? '0', release: m?.[3] ?? '0', displayName: v };
}

async function toBmGenerations(deps: ApiDeps, newestFirst: Generation[]): Promise<S['BmGeneration'][]> {
  const gens = [...newestFirst].reverse();
  const refs = gens.flatMap((g) => [generationRef(g.id), ...g.parts.map((p) => partRef(g.id, p))]);
  const numbers = await deps.numbers.numbersFor(await repository(deps), refs);
  return gens.map((g) => {
    const id = numbers.get(generationRef(g.id))!;
    const warned = g.status === 'UNKNOWN' || g.runStatus === 'WARNING';
    const failed = g.status === 'INVALID' || g.runStatus === 'ERROR' || g.runStatus === 'POSTOPS_ERROR';
    return {
      id,
      protectionTime: millis(g.protectionTime),
      blueMind: versionInfo(g.productVersion),
      withWarnings: warned,
      withErrors: failed,
      parts: g.parts.map((p) => ({
        id: numbers.get(partRef(g.id, p))!,
        generationId: id,
        begin: millis(p.begin),
        end: p.end ? millis(p.end) : null,
        size: Math.round(p.sizeRead / MIB),
        tag: p.tag,
        server: p.server,
        withWarnings: p.status === 'UNKNOWN',
        withErrors: p.status === 'INVALID',
        valid: p.status,
        datatype: p.tag.split('/').pop() ?? p.tag,
      })),
      dataprotectId: g.id,
    };
  });
}

/** BlueMind lists one operation per kind; complete.restore.user has none (the console adds the entry's kind). */
function toBmOperations(ops: readonly RestoreOperation[]): S['BmRestoreOperation'][] {
  return ops.flatMap((op): S['BmRestoreOperation'][] =>
    op.identifier === 'complete.restore.user' || op.kinds.length === 0
      ? [{ identifier: op.identifier, kind: null, requiredTag: op.requiredTag }]
      : op.kinds.map((kind) => ({ identifier: op.identifier, kind, requiredTag: op.requiredTag })),
  );
}

const DIRECTORY_KIND: Record<Restorable['kind'], string> = {
  DOMAIN: 'DOMAIN',
  USER: 'USER',
  MAILSHARE: 'MAILSHARE',
  OU: 'ORG_UNIT',
  ADDRESSBOOK: 'ADDRESSBOOK',
  CALENDAR: 'CALENDAR',
  RESOURCE: 'RESOURCE',
};
const PATH_SEGMENT: Record<Restorable['kind'], string> = {
  DOMAIN: 'domains',
  USER: 'users',
  MAILSHARE: 'mailshares',
  OU: 'ous',
  ADDRESSBOOK: 'addressbooks',
  CALENDAR: 'calendars',
  RESOURCE: 'resources',
};

/** BlueMind's GenerationContent: the domains and directory entries the caller may restore, and the operations. */
function generationContent(number: number, entities: Restorable[], ops: RestoreOperation[]): S['BmGenerationContent'] {
  const domains = new Map<string, S['BmItemValue']>();
  const entries: S['BmItemValue'][] = [];
  for (const e of entities) {
    if (e.kind === 'DOMAIN') {
      domains.set(e.uid, { uid: e.uid, displayName: e.displayName, value: { name: e.uid, label: e.displayName, global: false, aliases: [] } });
      continue;
    }
    entries.push({
      uid: e.uid,
      displayName: e.displayName,
      value: {
        entryUid: e.uid,
        kind: DIRECTORY_KIND[e.kind],
        displayName: e.displayName,
        email: e.email ?? null,
        path: `${e.domainUid}/${PATH_SEGMENT[e.kind]}/${e.uid}`,
        domainUid: e.domainUid,
        orgUnitUid: e.orgUnitPath?.length ? e.orgUnitPath[e.orgUnitPath.length - 1] : null,
        orgUnitPath: e.orgUnitPath ?? [],
        deleted: e.deleted,
      },
    });
  }
  // A domain whose entries are listed but which is not itself restorable here is still named.
  for (const e of entries) {
    const d = (e.value as { domainUid: string }).domainUid;
    if (!domains.has(d)) domains.set(d, { uid: d, displayName: d, value: { name: d, label: d, global: false, aliases: [] } });
  }
  return { generationId: number, domains: [...domains.values()], entries, capabilities: toBmOperations(ops) };
}

async function allEntities(deps: ApiDeps, by: Principal, generationId: string, signal: AbortSignal): Promise<Restorable[]> {
  const out: Restorable[] = [];
  for (;;) {
    signal.throwIfAborted();
    const page = await deps.restores.listEntities(by, generationId, { offset: out.length, limit: 500 });
    out.push(...page.items);
    if (page.items.length === 0 || out.length >= page.total) return out;
  }
}

/** BlueMind's TaskStatus of one of our tasks; `result` is the task's result as a JSON string, as BlueMind has it. */
export function toBmTaskStatus(t: Task): S['BmTaskStatus'] {
  const running = t.status === 'RUNNING';
  let steps = t.progress.total ?? 0;
  let progress = t.progress.done;
  if (t.status === 'SUCCEEDED') {
    steps = Math.max(steps, progress, 1);
    progress = steps;
  }
  return {
    steps,
    progress,
    lastLogEntry: running ? t.progress.message : (t.error ?? t.progress.message ?? null),
    state: running ? 'InProgress' : t.status === 'SUCCEEDED' ? 'Success' : 'InError',
    result: t.result == null ? null : JSON.stringify(t.result),
  };
}

/** Waits for a task to end, following it live when it runs here and reading the database otherwise. */
async function ended(deps: ApiDeps, id: string): Promise<Task> {
  for (;;) {
    const t = deps.tasks.isLocal(id) ? await deps.tasks.whenDone(id) : await deps.tasks.get(id);
    if (!t) throw new NotFoundError(`no task ${id}`);
    if (t.status !== 'RUNNING') return t;
    await new Promise((r) => setTimeout(r, LOG_POLL_MS));
  }
}

/**
 * BlueMind's getRestoreCapabilitiesByTags is a GET with a JSON body (an array of tags). fastify does not read the
 * body of a GET, so it is read here; `?tags=` does the same for clients that cannot send one.
 */
async function tagsOf(request: FastifyRequest, queryTags: string[] | undefined): Promise<string[]> {
  const raw = request.raw;
  const length = raw.headers['content-length'];
  const hasBody = raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!hasBody) return queryTags ?? [];
  const type = String(raw.headers['content-type'] ?? '');
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ProblemError(problem(415, `The body is a JSON array of tags (content-type: application/json), not ${type || 'untyped'}.`));
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new ProblemError(problem(413, `The list of tags is over ${BODY_LIMIT / 1024} KiB.`));
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ProblemError(problem(400, 'The body is not JSON: send an array of tags such as ["mail/imap"].', { errors: [{ field: 'body', message: 'is not JSON' }] }));
  }
  if (!Array.isArray(body) || body.length > 50 || !body.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 100)) {
    throw new ProblemError(
      problem(400, 'The body must be an array of at most 50 tags, each a non-empty string such as "mail/imap".', {
        errors: [{ field: 'body', message: 'must be an array of tags' }],
      }),
    );
  }
  return [...(queryTags ?? []), ...(body as string[])];
}

const taskRef = (t: { task: Task }) => ({ status: 200 as const, body: { id: t.task.id } });

export function bluemindBinders(deps: ApiDeps): BlueMindBinders {
  return {
    // BlueMind's form and scripts know full generations only (its "latest" is a global restore's): mail recovery
    // points are ours, offered by our restore browser.
    bmGetAvailableGenerations: async () => ({
      status: 200, body: await toBmGenerations(deps, (await deps.generations.list()).filter((g) => g.trigger !== 'recovery-point')),
    }),

    bmGetContent: async ({ path, principal }) => {
      const id = await resolveGeneration(deps, path.partGen);
      // Before the task: an unknown generation is a 404 and a build without restores a 501, not a failed task.
      const ops = await deps.restores.capabilities(id);
      const number = (await deps.numbers.numbersFor(await repository(deps), [generationRef(id)])).get(generationRef(id))!;
      const task = await deps.tasks.start(
        { kind: 'content', ...taskTitle('content', { generation: id }), actor: { login: principal.login, uid: principal.uid }, target: id },
        async (ctx) => {
          const entities = await allEntities(deps, principal, id, ctx.signal);
          ctx.progress({ done: entities.length, total: entities.length, unit: 'entries' });
          return generationContent(number, entities, ops) as unknown as Record<string, unknown>;
        },
      );
      return taskRef({ task });
    },

    bmGetRestoreCapabilities: async () => ({ status: 200, body: toBmOperations(await deps.restores.capabilities()) }),

    bmGetRestoreCapabilitiesByTags: async ({ query, request }) => {
      const tags = await tagsOf(request, query.tags);
      const ops = (await deps.restores.capabilities()).filter((op) => op.requiredTag === null || tags.includes(op.requiredTag));
      return { status: 200, body: toBmOperations(ops) };
    },

    bmRun: async ({ body, principal }) => {
      const generationId = await resolveGeneration(deps, body.generation);
      return taskRef(
        await deps.restores.start(principal, {
          operation: body.restoreOperationIdenfitier,
          generationId,
          entity: { kind: body.item.kind, uid: body.item.entryUid, domainUid: body.item.domainUid },
        }),
      );
    },

    bmForget: async ({ query, principal }) => taskRef(await deps.generations.forget(await resolveGeneration(deps, query.generationId), principal)),

    bmGetRetentionPolicy: async () => {
      const s = await deps.settings.get();
      return { status: 200, body: { daily: s.retentionDays, weekly: s.keepWeekly, monthly: s.keepMonthly } };
    },

    bmUpdatePolicy: async ({ body, principal }) => {
      const s = await deps.settings.get();
      await deps.settings.update(
        {
          retentionDays: body.daily,
          keepWeekly: body.weekly ?? s.keepWeekly,
          keepMonthly: body.monthly ?? s.keepMonthly,
          backupEmails: s.backupEmails,
          backupArchivedEmails: s.backupArchivedEmails,
          backupTime: s.backupTime,
          repositoryLocation: s.repositoryLocation,
          skippedTags: s.skippedTags,
        },
        principal,
      );
      return { status: 204, body: undefined as never };
    },

    bmSyncWithFilesystem: async ({ principal }) => {
      // BlueMind's call returns once the list is rebuilt: a script lists the generations right after it.
      const start = await deps.generations.sync(principal);
      const t = await ended(deps, start.task.id);
      if (t.status !== 'SUCCEEDED') {
        throw new ProblemError(problem(503, `The generations could not be read again from the repository: ${t.error ?? t.status}`, { taskId: t.id }));
      }
      return { status: 204, body: undefined as never };
    },

    bmInstallFromGeneration: async ({ body, principal }) => {
      const id = await resolveGeneration(deps, body);
      return taskRef(await deps.globalRestore.start(principal, await repository(deps), id, {}));
    },

    bmSaveAll: async ({ principal }) => taskRef(await deps.backups.start(principal, 'api')),

    bmTaskStatus: async ({ path, principal }) => ({ status: 200, body: toBmTaskStatus(await visibleTask(deps, principal, path.taskId)) }),

    bmTaskCurrentLogs: async ({ path, query, principal }) => {
      await visibleTask(deps, principal, path.taskId);
      const messages: string[] = [];
      let after = query.offset ?? 0;
      for (;;) {
        const page = await deps.tasks.log(path.taskId, after, 5000);
        messages.push(...page.map((e) => e.message));
        if (page.length < 5000) return { status: 200, body: messages };
        after = page[page.length - 1].seq;
      }
    },
  };
}

/**
 * BlueMind's ITask.log: one JSON object a line as the task writes its log, open until the task ends; the last
 * line has `end: true` and the final status (a JSON string, as BlueMind sends it).
 */
export async function streamBmTaskLog(deps: ApiDeps, principal: Principal, taskId: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await visibleTask(deps, principal, taskId);
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
  let closed = false;
  raw.on('close', () => (closed = true));
  let after = 0;
  try {
    while (!closed) {
      const t = await deps.tasks.get(taskId);
      if (!t) break;
      const entries = await deps.tasks.log(taskId, after, 1000);
      const total = t.progress.total ?? 0;
      for (const e of entries) {
        raw.write(`${JSON.stringify({ done: t.progress.done, total, message: e.message, end: false })}\n`);
        after = e.seq;
      }
      if (entries.length === 1000) continue;
      if (t.status !== 'RUNNING') {
        const status = toBmTaskStatus(t);
        raw.write(`${JSON.stringify({ done: status.progress, total: status.steps, message: status.lastLogEntry, end: true, status: JSON.stringify(status) })}\n`);
        break;
      }
      await new Promise((r) => setTimeout(r, LOG_POLL_MS));
    }
  } catch (err) {
    // The answer has begun: a failure can only end the stream.
    request.log.error({ err }, `log stream of task ${taskId} failed`);
  }
  raw.end();
}
