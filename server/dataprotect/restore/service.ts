// RestoreService: the API's and the console's single-entity restores. Every listing and every restore applies the
// caller's scope (the domains their roles reach; organisational units when manageRestore is limited to some); a
// restore is a task (progress, log, cancel), one at a time per entity, and ends in the audit log.

import type { InjectionToken } from 'tsyringe';
import { inject, injectable } from 'tsyringe';
import type { Repository } from '../../engine/index.js';
import type { DirectoryEntity, HostPort } from '../../host/port.js';
import { TaskRegistry, type TaskStart } from '../../jobs/task-registry.js';
import { AuditLog } from '../audit.js';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../errors.js';
import type { MailFolder, MailMessage, Page, Restorable, SavedContainer, SavedItem } from '../model.js';
import { entityInRestoreScope, holdsRole, type Principal } from '../principal.js';
import { operationsForTags, RESTORE_OPERATIONS, type RestoreOperation } from '../restore-capabilities.js';
import type { EntityQuery, ItemQuery, MessageQuery, RestoreRequest, RestoreService } from '../services.js';
import { loadCatalog, publicEntry, type Catalog, type CatalogEntry } from './catalog.js';
import { savedContainers, savedItems } from './saved-content.js';
import type { GenerationParts } from './generation-parts.js';
import type { PartAgents } from '../generation/part-agents.js';
import { describeMessage, parseHeaders, type SavedMailbox, type SavedMessage } from './mailbox-reader.js';
import { openSavedMailbox } from './operations/mail.js';
import type { Mailer } from './mailer.js';
import { MAIL_TAG, runRestore, validate, type PlannedRestore, type RestoreEnv } from './operations/index.js';
import { partSnapshot } from './generation-parts.js';
import { restoreTitle } from '../task-titles.js';
import { periodBound } from './period.js';

/** What restores read from and write to, as the composition root provides it. */
export interface RestoreBackend {
  /** The repository for browsing (may be shared between calls). */
  repository(): Promise<Repository>;
  /** A repository of its own for one restore task (closed when the task ends); default: repository(). */
  openRepository?(): Promise<Repository>;
  generations: GenerationParts;
  host: HostPort;
  mailer: Mailer | null;
  /** The node agents: restores that write a server's disks run on that server's agent (none: in this process). */
  agents?: PartAgents;
  /** The repository's location as the agents reach it. */
  repositoryLocation?(): Promise<string>;
}

export const RESTORE_BACKEND: InjectionToken<RestoreBackend> = Symbol('dp.RestoreBackend');

/** Headers of saved messages, by snapshot and file: searching a folder twice reads it once. */
const headerCache = new Map<string, Record<string, string>>();
const HEADER_CACHE_MAX = 100_000;

/** Title parameters beyond the entity's name: the target account, the period. */
function titleParams(p: PlannedRestore): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.into) out.target = p.into.displayName;
  if (p.from) out.from = p.from.toISOString().slice(0, 10);
  if (p.to) out.to = p.to.toISOString().slice(0, 10);
  return out;
}

export function restoreTarget(entry: { domainUid: string; uid: string }): string {
  return `entity:${entry.domainUid}/${entry.uid}`;
}

/** What a mail recovery point can restore: the operations that read the mail parts and nothing else. */
const MAIL_ONLY_OPERATIONS: ReadonlySet<string> = new Set(RESTORE_OPERATIONS.filter((o) => o.requiredTag === 'mail/imap').map((o) => o.identifier));

@injectable()
export class EntityRestores implements RestoreService {
  /** Entities whose restore is being started in this process (closes the gap before the task row exists). */
  private readonly starting = new Set<string>();

  constructor(
    @inject(TaskRegistry) private readonly tasks: TaskRegistry,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(RESTORE_BACKEND) private readonly backend: RestoreBackend,
  ) {}

  private async catalog(generationId: string): Promise<{ env: RestoreEnv; catalog: Catalog }> {
    const g = await this.backend.generations.get(generationId);
    const repo = await this.backend.repository();
    const env: RestoreEnv = { repo, host: this.backend.host, mailer: this.backend.mailer };
    return { env, catalog: await loadCatalog(repo, this.backend.host, g) };
  }

  private entry(by: Principal, catalog: Catalog, uid: string): CatalogEntry {
    // Outside the caller's domain or units, an entity answers exactly as one that does not exist: uids of other
    // domains cannot be probed, and no name leaks.
    const e = catalog.byUid.get(uid);
    if (!e || !entityInRestoreScope(by, e)) throw new NotFoundError(`entity ${uid} is not in generation ${catalog.generation.id}`);
    return e;
  }

  async capabilities(generationId?: string): Promise<RestoreOperation[]> {
    let ops = [...RESTORE_OPERATIONS];
    if (!this.backend.mailer) ops = ops.filter((o) => !o.identifier.startsWith('send.'));
    if (!generationId) return ops;
    const g = await this.backend.generations.get(generationId);
    // A recovery point holds the mail alone: the operations that read mail only.
    if (g.recoveryPoint) ops = ops.filter((o) => MAIL_ONLY_OPERATIONS.has(o.identifier));
    return operationsForTags(ops, g.parts.map((p) => p.tag));
  }

  async listEntities(by: Principal, generationId: string, q: EntityQuery): Promise<Page<Restorable>> {
    if (!holdsRole(by, 'manageRestore')) throw new ForbiddenError('restores need the manageRestore role');
    const { catalog } = await this.catalog(generationId);
    const needle = q.search?.trim().toLowerCase();
    const items = catalog.entries.filter(
      (e) =>
        (!q.kind || e.kind === q.kind) &&
        (q.deleted === undefined || e.deleted === q.deleted) &&
        (!needle || e.displayName.toLowerCase().includes(needle) || (e.email ?? '').toLowerCase().includes(needle) || e.uid.toLowerCase() === needle) &&
        entityInRestoreScope(by, e),
    );
    return { total: items.length, offset: q.offset, items: items.slice(q.offset, q.offset + q.limit).map(publicEntry) };
  }

  private async mailbox(by: Principal, generationId: string, entityUid: string): Promise<SavedMailbox> {
    const { env, catalog } = await this.catalog(generationId);
    const e = this.entry(by, catalog, entityUid);
    if (e.kind !== 'USER' && e.kind !== 'MAILSHARE') throw new InvalidInputError('entityUid', `${e.displayName} has no mailbox`);
    const loc = await env.host.mailboxLocation(e.entity);
    const snap = partSnapshot(catalog.generation, MAIL_TAG, loc?.server);
    if (!loc || !snap) throw new NotFoundError(`generation ${generationId} holds no mail of ${e.displayName}`);
    return (await openSavedMailbox(env, catalog.generation, e.entity)).box;
  }

  async listMailFolders(by: Principal, generationId: string, entityUid: string): Promise<MailFolder[]> {
    return (await this.mailbox(by, generationId, entityUid)).summary();
  }

  async listMailMessages(by: Principal, generationId: string, entityUid: string, q: MessageQuery): Promise<Page<MailMessage>> {
    const box = await this.mailbox(by, generationId, entityUid);
    const all = (await box.messages(await box.folder(q.folder))).reverse(); // newest first
    const described = async (m: SavedMessage) => {
      const key = `${box.snapshot.id}:${m.file}`;
      let h = headerCache.get(key);
      if (!h) {
        h = parseHeaders(await box.content(m));
        if (headerCache.size >= HEADER_CACHE_MAX) headerCache.delete(headerCache.keys().next().value!);
        headerCache.set(key, h);
      }
      return describeMessage(m, h);
    };
    const needle = q.search?.trim().toLowerCase();
    if (!needle) {
      return { total: all.length, offset: q.offset, items: await Promise.all(all.slice(q.offset, q.offset + q.limit).map(described)) };
    }
    const matches: MailMessage[] = [];
    for (const m of all) {
      const d = await described(m);
      if (d.subject.toLowerCase().includes(needle) || d.from.toLowerCase().includes(needle)) matches.push(d);
    }
    return { total: matches.length, offset: q.offset, items: matches.slice(q.offset, q.offset + q.limit) };
  }

  /**
   * The live account restore.into.account writes into: a user of the entity's domain within the caller's scope
   * (outside it, it answers as one that does not exist).
   */
  private async targetAccount(by: Principal, env: RestoreEnv, catalog: Catalog, entry: CatalogEntry, uid: string): Promise<DirectoryEntity> {
    const live = await env.host.directory.entity(entry.domainUid, uid);
    // OU-limited scopes are checked on the units the generation saw the account in.
    const scope = catalog.byUid.get(uid) ?? { domainUid: entry.domainUid, orgUnitPath: [] };
    if (!live || !entityInRestoreScope(by, scope)) throw new NotFoundError(`no account ${uid} in domain ${entry.domainUid}`);
    return live;
  }

  async listContainers(by: Principal, generationId: string, entityUid: string): Promise<SavedContainer[]> {
    if (!holdsRole(by, 'manageRestore')) throw new ForbiddenError('restores need the manageRestore role');
    const { env, catalog } = await this.catalog(generationId);
    return savedContainers(env.host, this.entry(by, catalog, entityUid));
  }

  async listContainerItems(by: Principal, generationId: string, entityUid: string, containerUid: string, q: ItemQuery): Promise<Page<SavedItem>> {
    if (!holdsRole(by, 'manageRestore')) throw new ForbiddenError('restores need the manageRestore role');
    const { env, catalog } = await this.catalog(generationId);
    const saved = await savedItems(env, catalog, this.entry(by, catalog, entityUid), containerUid);
    const needle = q.search?.trim().toLowerCase();
    const items = saved.filter((i) => (!needle || i.summary.toLowerCase().includes(needle)) && (q.missing === undefined || q.missing === !i.exists));
    return { total: items.length, offset: q.offset, items: items.slice(q.offset, q.offset + q.limit) };
  }

  async start(by: Principal, request: RestoreRequest): Promise<TaskStart> {
    if (!holdsRole(by, 'manageRestore')) throw new ForbiddenError('restores need the manageRestore role');
    const { env, catalog } = await this.catalog(request.generationId);
    if (catalog.generation.recoveryPoint && !MAIL_ONLY_OPERATIONS.has(request.operation)) {
      throw new InvalidInputError(
        'operation',
        `generation ${catalog.generation.id} is a mail recovery point: it holds the mail alone, so ${request.operation} cannot read it; choose a nightly generation for this restore`,
      );
    }
    const entry = this.entry(by, catalog, request.entity.uid);
    if (entry.domainUid !== request.entity.domainUid || entry.kind !== request.entity.kind) {
      throw new InvalidInputError('entity', `entity ${request.entity.uid} is a ${entry.kind} of ${entry.domainUid} in this generation`);
    }
    // A target account is looked up only for an operation that takes one (validate explains the others).
    const takesTarget = RESTORE_OPERATIONS.some((o) => o.identifier === request.operation && o.needsTarget);
    const into = request.targetUid !== undefined && takesTarget ? await this.targetAccount(by, env, catalog, entry, request.targetUid) : undefined;
    if (request.targetUid !== undefined && !takesTarget) throw new InvalidInputError('targetUid', `a target account applies to restore.into.account only, not to ${request.operation}`);
    const plan: PlannedRestore = {
      operation: request.operation, entry, catalog, folder: request.folder, messageIds: request.messageIds, recipient: request.recipient,
      into, from: periodBound(request.from, 'from'), to: periodBound(request.to, 'to'),
      container: request.container, itemUids: request.itemUids,
      actor: { login: by.login, email: by.email },
    };
    await validate(env, plan);

    const target = restoreTarget(entry);
    if (this.starting.has(target)) throw new ConflictError(`a restore of ${entry.displayName} is starting`);
    this.starting.add(target);
    try {
      const running = await this.tasks.findRunning('restore', target);
      if (running) throw new ConflictError(`a restore of ${entry.displayName} is already running`, running.id);
      const generationId = catalog.generation.id;
      const own = this.backend.openRepository ? await this.backend.openRepository() : null;
      const taskEnv: RestoreEnv = {
        ...env, ...(own ? { repo: own } : {}),
        ...(this.backend.agents ? { agents: this.backend.agents, repositoryLocation: await this.backend.repositoryLocation?.() } : {}),
      };
      const container = request.container ? entry.containers.find((c) => c.uid === request.container) : undefined;
      const detail = {
        operation: request.operation, kind: entry.kind, entity: entry.uid, domainUid: entry.domainUid, displayName: entry.displayName, folder: request.folder ?? null,
        ...(container ? { container: container.uid, items: request.itemUids?.length ?? null } : {}),
        ...(into ? { targetUid: into.uid } : {}), ...(plan.from && plan.to ? { from: plan.from.toISOString(), to: plan.to.toISOString() } : {}),
      };
      const task = await this.tasks.start(
        { kind: 'restore', ...restoreTitle(request.operation, entry.displayName, { folder: request.folder, container: container?.name || container?.uid }, titleParams(plan)), actor: { login: by.login, uid: by.uid }, target },
        async (ctx) => {
          try {
            const result = await runRestore(taskEnv, plan, ctx);
            await this.audit.record({ actor: by.login, action: 'restore.end', target, generationId, taskId: ctx.id, result: 'ok', detail: { ...detail, result } });
            return result;
          } catch (e) {
            const cancelled = ctx.signal.aborted;
            await this.audit.record({
              actor: by.login, action: 'restore.end', target, generationId, taskId: ctx.id, result: cancelled ? 'cancelled' : 'failed',
              detail: { ...detail, error: (e as Error).message },
            }).catch(() => {});
            throw e;
          } finally {
            await own?.close().catch(() => {});
          }
        },
      ).catch(async (e) => {
        await own?.close().catch(() => {});
        throw e;
      });
      return { task, alreadyRunning: false };
    } finally {
      this.starting.delete(target);
    }
  }
}
