// `bm-dataprotect entity …`: single-entity restores from the command line — list a generation's entities, an
// entity's saved containers and a container's items, restore one with any of BlueMind's operations (or one container,
// or chosen items). Honours DATABASE_URL (the host's directory database) and --host-root.

import os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { defaultCacheDir } from '../../engine/index.js';
import { DEFAULT_HOST_ROOT } from '../../host/reference/layout.js';
import { loadCatalog, loadEntityCatalog } from '../../dataprotect/restore/catalog.js';
import { RepositoryGenerationParts } from '../../dataprotect/restore/generation-parts.js';
import { savedContainers, savedItems } from '../../dataprotect/restore/saved-content.js';
import { runRestore, validate, type PlannedRestore, type RestoreContext } from '../../dataprotect/restore/operations/index.js';
import { RESTORE_OPERATIONS, type RestoreOperationId } from '../../dataprotect/restore-capabilities.js';
import { RESTORABLE_KINDS, type RestorableKind } from '../../dataprotect/model.js';
import { periodBound } from '../../dataprotect/restore/period.js';
import type { DirectoryEntity } from '../../host/port.js';
import { installation } from '../compose.js';
import { collect, openRepo, output, UsageError, wholeNumber, type RepoOptions } from '../context.js';
import { bytes, duration } from '../output.js';

interface Common extends RepoOptions {
  hostRoot: string;
}

interface ListOpts extends Common {
  kind?: RestorableKind;
  search?: string;
  deleted?: boolean;
  limit: number;
  offset: number;
}

interface EntityOpts extends Common {
  entity: string;
}

interface ItemOpts extends EntityOpts {
  container: string;
  search?: string;
  missing?: boolean;
  limit: number;
  offset: number;
}

interface RestoreOpts extends Common {
  entity: string;
  op: RestoreOperationId;
  folder?: string;
  message?: string[];
  container?: string;
  item?: string[];
  recipient?: string;
  smtp?: string;
  into?: string;
  from?: string;
  to?: string;
}

function kind(value: string): RestorableKind {
  const k = value.toUpperCase();
  const known = RESTORABLE_KINDS.find((x) => x === k);
  if (!known) throw new InvalidArgumentError(`expected one of ${RESTORABLE_KINDS.join(', ')}`);
  return known;
}

function operation(value: string): RestoreOperationId {
  if (!RESTORE_OPERATIONS.some((o) => o.identifier === value)) {
    throw new InvalidArgumentError(`expected one of ${RESTORE_OPERATIONS.map((o) => o.identifier).join(', ')}`);
  }
  return value as RestoreOperationId;
}

/** The repository, the installation and the generation's catalog: of every entity, or of `entity` alone. */
async function open(opts: Common, generationId: string, entity?: string) {
  // One entity's blobs are a few of the repository's: looked up in the local index cache, as `restore` does.
  const repo = await openRepo(opts, { indexCache: defaultCacheDir(), notice: (m) => output(opts).warn(m) });
  const inst = installation(opts);
  const generation = await new RepositoryGenerationParts(async () => repo).get(generationId);
  const catalog = entity === undefined ? await loadCatalog(repo, inst.host, generation) : await loadEntityCatalog(repo, inst.host, generation, entity);
  return { repo, inst, catalog };
}

export function register(program: Command): void {
  const entity = program.command('entity').description("single-entity restores: a generation's users, mailshares, calendars… and BlueMind's restore operations");

  entity
    .command('list')
    .description('the restorable entities of a generation (deleted ones flagged)')
    .argument('<generation>', "generation id, or 'latest'")
    .option('--repo <dir>', 'repository directory')
    .option('--kind <kind>', `only this kind (${RESTORABLE_KINDS.join(', ')})`, kind)
    .option('--search <text>', 'substring of the display name or email')
    .option('--deleted', 'only entities that no longer exist')
    .option('--limit <n>', 'at most this many', wholeNumber, 1000)
    .option('--offset <n>', 'skip this many', wholeNumber, 0)
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .option('--json', 'one JSON object per entity, then a summary')
    .action(async (generationId: string, opts: ListOpts) => {
      const out = output(opts);
      const { repo, catalog } = await open(opts, generationId);
      try {
        const needle = opts.search?.toLowerCase();
        const all = catalog.entries.filter(
          (e) => (!opts.kind || e.kind === opts.kind) && (!opts.deleted || e.deleted) &&
            (!needle || e.displayName.toLowerCase().includes(needle) || (e.email ?? '').toLowerCase().includes(needle)),
        );
        const page = all.slice(opts.offset, opts.offset + opts.limit);
        for (const e of page) {
          if (out.json) out.line({ type: 'entity', kind: e.kind, uid: e.uid, domainUid: e.domainUid, displayName: e.displayName, email: e.email ?? null, deleted: e.deleted });
          else out.say(`${e.kind.padEnd(11)} ${e.uid.padEnd(38)} ${e.displayName}${e.email ? ` <${e.email}>` : ''}${e.deleted ? '  [deleted]' : ''}`);
        }
        out.summary({ generation: catalog.generation.id, total: all.length, shown: page.length }, `${page.length} of ${all.length} entities in generation ${catalog.generation.id}`);
      } finally {
        await repo.close();
      }
    });

  /** The catalog entry of --entity, or a usage error naming what to do. */
  const entryOf = (catalog: Awaited<ReturnType<typeof open>>['catalog'], uid: string) => {
    const entry = catalog.byUid.get(uid);
    if (!entry) throw new UsageError(`entity ${uid} is not in generation ${catalog.generation.id} (see \`entity list\`)`);
    return entry;
  };

  entity
    .command('containers')
    .description("an entity's calendars, address books, task lists, notes and web-app data as a generation saved them")
    .argument('<generation>', "generation id, or 'latest'")
    .option('--repo <dir>', 'repository directory')
    .requiredOption('--entity <uid>', 'the entity (see `entity list`)')
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .option('--json', 'one JSON object per container, then a summary')
    .action(async (generationId: string, opts: EntityOpts) => {
      const out = output(opts);
      const { repo, inst, catalog } = await open(opts, generationId, opts.entity);
      try {
        const entry = entryOf(catalog, opts.entity);
        const list = await savedContainers(inst.host, entry);
        for (const c of list) {
          if (out.json) out.line({ type: 'container', uid: c.uid, containerType: c.type, name: c.name, items: c.items, exists: c.exists });
          else out.say(`${c.type.padEnd(11)} ${c.uid.padEnd(50)} ${String(c.items).padStart(6)} items  ${c.name}${c.exists ? '' : '  [deleted]'}`);
        }
        out.summary({ generation: catalog.generation.id, entity: entry.uid, containers: list.length }, `${list.length} containers of ${entry.displayName} in generation ${catalog.generation.id}`);
      } finally {
        await repo.close();
      }
    });

  entity
    .command('items')
    .description("a saved container's events, contacts, tasks or notes, with whether each still exists")
    .argument('<generation>', "generation id, or 'latest'")
    .option('--repo <dir>', 'repository directory')
    .requiredOption('--entity <uid>', 'the entity (see `entity list`)')
    .requiredOption('--container <uid>', 'the container (see `entity containers`)')
    .option('--search <text>', 'substring of the summary')
    .option('--missing', 'only items that no longer exist')
    .option('--limit <n>', 'at most this many', wholeNumber, 1000)
    .option('--offset <n>', 'skip this many', wholeNumber, 0)
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .option('--json', 'one JSON object per item, then a summary')
    .action(async (generationId: string, opts: ItemOpts) => {
      const out = output(opts);
      const { repo, inst, catalog } = await open(opts, generationId, opts.entity);
      try {
        const entry = entryOf(catalog, opts.entity);
        const needle = opts.search?.toLowerCase();
        const all = (await savedItems({ repo, host: inst.host }, catalog, entry, opts.container).catch((e: Error) => {
          throw e.name === 'NotFoundError' ? new UsageError(`${e.message} (see \`entity containers\`)`) : e;
        })).filter((i) => (!needle || i.summary.toLowerCase().includes(needle)) && (!opts.missing || !i.exists));
        const page = all.slice(opts.offset, opts.offset + opts.limit);
        for (const i of page) {
          if (out.json) out.line({ type: 'item', ...i });
          else out.say(`${i.uid.padEnd(38)} ${(i.date ?? '').padEnd(19)} ${i.summary}${i.exists ? '' : '  [deleted]'}`);
        }
        out.summary({ generation: catalog.generation.id, entity: entry.uid, container: opts.container, total: all.length, shown: page.length }, `${page.length} of ${all.length} items of ${opts.container} in generation ${catalog.generation.id}`);
      } finally {
        await repo.close();
      }
    });

  entity
    .command('restore')
    .description('restore one entity of a generation with a restore operation (as in the console)')
    .argument('<generation>', "generation id, or 'latest'")
    .option('--repo <dir>', 'repository directory')
    .requiredOption('--entity <uid>', 'the entity (see `entity list`)')
    .requiredOption('--op <operation>', 'the operation: replace.mailbox, subfolder.mailbox, restore.mail.folder, replace.calendars, …', operation)
    .option('--folder <path>', 'restore.mail.folder / restore.mail.messages: the folder as saved')
    .option('--message <id>', 'restore.mail.messages: a message id (repeatable)', collect)
    .option('--container <uid>', 'replace.container, addmissing.container, replace.items, addmissing.items: the container (see `entity containers`)')
    .option('--item <uid>', 'replace.items, addmissing.items: an item uid (repeatable; see `entity items`)', collect)
    .option('--recipient <email>', 'send.*: who receives the export')
    .option('--into <login>', "restore.into.account: the live user (login, or login@domain) that receives the user's data")
    .option('--from <date>', 'undelete.mail: start of the period (YYYY-MM-DD or an ISO date-time)')
    .option('--to <date>', 'undelete.mail: end of the period (YYYY-MM-DD or an ISO date-time)')
    .option('--smtp <url>', 'send.*: the SMTP relay (smtp://host:port; default $DP_SMTP_URL or smtp://127.0.0.1:25)')
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (generationId: string, opts: RestoreOpts) => {
      const out = output(opts);
      const { repo, inst, catalog } = await open(opts, generationId, opts.entity);
      try {
        const entry = entryOf(catalog, opts.entity);
        // With node agents (DP_AGENTS, or the reference host's running ones), mail and file-hosting restores run on
        // the agent of the server that holds the data.
        const env = { ...inst.restoreEnv(repo, { send: opts.op.startsWith('send.'), smtp: opts.smtp }), agents: await inst.agents() };
        let into: DirectoryEntity | undefined;
        if (opts.into !== undefined) {
          const [login, domain = entry.domainUid] = opts.into.split('@');
          into = (await inst.host.directory.entities(domain, { kinds: ['USER'] })).find((u) => u.name === login);
          if (!into) throw new UsageError(`no user ${login} in domain ${domain} (--into takes a login of a live user)`);
        }
        const bound = (v: string | undefined, side: 'from' | 'to') => {
          try {
            return periodBound(v, side);
          } catch (e) {
            throw new UsageError(`--${side}: ${(e as Error).message}`);
          }
        };
        const plan: PlannedRestore = {
          operation: opts.op, entry, catalog, folder: opts.folder, messageIds: opts.message, recipient: opts.recipient,
          into, from: bound(opts.from, 'from'), to: bound(opts.to, 'to'),
          container: opts.container, itemUids: opts.item,
          actor: { login: `cli:${os.userInfo().username}`, email: null },
        };
        await validate(env, plan);
        const controller = new AbortController();
        const stop = () => controller.abort(new Error('interrupted'));
        process.once('SIGINT', stop);
        const started = Date.now();
        const ctx: RestoreContext = {
          signal: controller.signal,
          progress: (p) =>
            out.progress(
              { done: p.done ?? 0, total: p.total ?? null, unit: p.unit ?? null, bytes: p.bytes ?? null },
              p.total ? { value: p.done ?? 0, total: p.total, line: `${p.done ?? 0}/${p.total} ${p.unit ?? ''}${p.bytes ? `, ${bytes(p.bytes)}` : ''}` } : undefined,
            ),
          info: (m) => out.notice(m),
          warn: (m) => out.warn(m),
          attach: async () => undefined,
        };
        let result: Record<string, unknown>;
        try {
          result = await runRestore(env, plan, ctx);
        } finally {
          process.removeListener('SIGINT', stop);
        }
        out.summary(
          { operation: opts.op, generation: catalog.generation.id, entity: entry.uid, kind: entry.kind, durationMs: Date.now() - started, result },
          `${opts.op} of ${entry.displayName} from generation ${catalog.generation.id} done in ${duration(Date.now() - started)}: ${JSON.stringify(result)}`,
        );
      } finally {
        await repo.close();
      }
    });
}
