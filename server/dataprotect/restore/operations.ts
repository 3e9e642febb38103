// The restore operations themselves, one function per family, driven by a RestoreContext (a task's context, or
// the CLI's). Each reads only the entity's part of the generation (its mailbox subtree, its container exports)
// and writes only into the entity's own data through the host's writers.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { restore, type Repository } from '../../engine/index.js';
import { withDatabase } from '../../pg/settings.js';
import { dropDatabase } from '../../pg/databases.js';
import type { ContainerType, HostPort, ImapWriter, MailboxLocation } from '../../host/port.js';
import { readEntityExport } from '../../sources/pgsql-manifest.js';
import { restoreDatabase } from '../../sources/pgsql-restore.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { RESTORE_OPERATIONS, type RestoreOperationId } from '../restore-operations.js';
import { DATABASE_TAG, type Catalog, type CatalogEntry } from './catalog.js';
import { partSnapshot } from './generation-parts.js';
import { parseHeaders, SavedMailbox, type SavedMessage } from './mailbox-reader.js';
import type { Mailer } from './mailer.js';

export const MAIL_TAG = 'mail/imap';
export const FILEHOSTING_TAG = 'filehosting/data';

/** What an operation reports to and hears from (a task's context satisfies it). */
export interface RestoreContext {
  readonly signal: AbortSignal;
  progress(p: { done?: number; total?: number | null; unit?: string | null; bytes?: number | null; message?: string | null }): void;
  info(message: string): void;
  warn(message: string): void;
  attach(name: string, content: Buffer | string, contentType: string): Promise<unknown>;
}

export interface RestoreEnv {
  repo: Repository;
  host: HostPort;
  /** The SMTP relay send.* operations use; null when none is configured. */
  mailer: Mailer | null;
}

export interface PlannedRestore {
  operation: RestoreOperationId;
  entry: CatalogEntry;
  catalog: Catalog;
  folder?: string;
  messageIds?: string[];
  recipient?: string;
  /** Who asked (login and email), for send.* recipients and the logs. */
  actor: { login: string; email: string | null };
}

function checkCancel(ctx: RestoreContext): void {
  if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('cancelled');
}

/** `restored-YYYY-MM-DD` of a generation's date (UTC, as the generation's id shows it). */
export function restoredFolderName(time: Date): string {
  return `restored-${time.toISOString().slice(0, 10)}`;
}

/** Checks that an operation applies to the entry in this generation; throws InvalidInputError / NotFoundError. */
export async function validate(env: RestoreEnv, p: PlannedRestore): Promise<void> {
  const op = RESTORE_OPERATIONS.find((o) => o.identifier === p.operation);
  if (!op) throw new InvalidInputError('operation', `unknown restore operation ${p.operation}`);
  if (!op.kinds.includes(p.entry.kind)) throw new InvalidInputError('operation', `${p.operation} does not apply to a ${p.entry.kind} entity`);
  if (op.requiredTag && !partSnapshot(p.catalog.generation, op.requiredTag)) {
    throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${op.requiredTag} part, which ${p.operation} needs`);
  }
  if (op.deletedEntitiesOnly && !p.entry.deleted) {
    throw new InvalidInputError('operation', `${p.operation} restores a deleted user; ${p.entry.displayName} still exists (use the replace.* operations)`);
  }
  if ((p.operation === 'restore.mail.folder' || p.operation === 'restore.mail.messages') && !p.folder) {
    throw new InvalidInputError('folder', `${p.operation} needs the folder`);
  }
  if (p.operation === 'restore.mail.messages' && !p.messageIds?.length) throw new InvalidInputError('messageIds', 'choose at least one message');
  if (p.operation.startsWith('send.') && !env.mailer) {
    throw new InvalidInputError('operation', 'no SMTP relay is configured for sending exports');
  }
  if (op.requiredTag === MAIL_TAG) {
    const mailbox = await savedMailbox(env, p);
    if (p.folder) await mailbox.box.folder(p.folder);
  }
}

async function savedMailbox(env: RestoreEnv, p: PlannedRestore): Promise<{ box: SavedMailbox; loc: MailboxLocation }> {
  const loc = await env.host.mailboxLocation(p.entry.entity);
  if (!loc) throw new InvalidInputError('entity', `${p.entry.displayName} has no mailbox`);
  const snap = partSnapshot(p.catalog.generation, MAIL_TAG, loc.server);
  if (!snap) throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${MAIL_TAG} part of server ${loc.server}`);
  const box = new SavedMailbox(env.repo, snap, loc.partPath);
  await box.folders();
  return { box, loc };
}

/** Runs one planned restore; the result goes into the task's result and the audit record. */
export async function runRestore(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  ctx.info(`${p.operation} of ${p.entry.kind} ${p.entry.displayName} (${p.entry.uid}) from generation ${p.catalog.generation.id}`);
  switch (p.operation) {
    case 'subfolder.mailbox':
      return appendMail(env, p, ctx, 'subfolder');
    case 'restore.mail.folder':
      return appendMail(env, p, ctx, 'folder');
    case 'restore.mail.messages':
      return appendMail(env, p, ctx, 'messages');
    case 'replace.mailbox':
      return replaceMailbox(env, p, ctx);
    case 'replace.calendars':
    case 'replace.resources':
    case 'replace.domain.calendars':
      return replaceContainers(env, p, ctx, 'calendar');
    case 'replace.books':
    case 'replace.domain.books':
      return replaceContainers(env, p, ctx, 'addressbook');
    case 'replace.todolists':
      return replaceContainers(env, p, ctx, 'todolist');
    case 'send.calendars.ics':
    case 'send.domain.calendars.ics':
    case 'send.resources':
      return sendExports(env, p, ctx, 'calendar');
    case 'send.books.vcf':
    case 'send.domain.books.vcf':
      return sendExports(env, p, ctx, 'addressbook');
    case 'send.todolist.ics':
      return sendExports(env, p, ctx, 'todolist');
    case 'replace.ou':
      return replaceOrgUnit(env, p, ctx);
    case 'complete.restore.user':
      return completeUser(env, p, ctx);
    case 'restore.filehosting':
      return restoreFileHosting(env, p, ctx);
  }
}

// --- mail through IMAP APPEND ---------------------------------------------------------------------------------

/** Message-IDs already in a live folder (a restore run twice appends nothing twice). */
async function liveMessageIds(imap: ImapWriter, loc: MailboxLocation, folder: string): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const id of await imap.messageIds(loc, folder)) ids.set(id, (ids.get(id) ?? 0) + 1);
  return ids;
}

async function appendMail(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, mode: 'subfolder' | 'folder' | 'messages'): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const base = restoredFolderName(p.catalog.generation.time);
  // What goes where: [saved folder, live folder, messages].
  const plan: { target: string; messages: SavedMessage[] }[] = [];
  const folders = await box.folders();
  if (mode === 'subfolder') {
    for (const f of folders) plan.push({ target: f.path === 'INBOX' ? base : `${base}/${f.path}`, messages: await box.messages(f) });
  } else if (mode === 'folder') {
    for (const f of folders.filter((x) => x.path === p.folder || x.path.startsWith(`${p.folder}/`))) plan.push({ target: f.path, messages: await box.messages(f) });
  } else {
    const f = await box.folder(p.folder!);
    const wanted = new Set(p.messageIds);
    const messages = (await box.messages(f)).filter((m) => wanted.has(m.id));
    const missing = [...wanted].filter((id) => !messages.some((m) => m.id === id));
    if (missing.length) throw new NotFoundError(`messages not in folder ${p.folder} of the generation: ${missing.slice(0, 5).join(', ')}`);
    plan.push({ target: f.path, messages });
  }
  const total = plan.reduce((n, x) => n + x.messages.length, 0);
  const totalBytes = plan.reduce((n, x) => n + x.messages.reduce((s, m) => s + m.size, 0), 0);
  ctx.progress({ done: 0, total, unit: 'messages', bytes: 0, message: `restoring ${total} messages (${totalBytes} bytes) into ${loc.imapLogin}` });
  const imap = await env.host.writers.imap();
  let done = 0;
  let bytes = 0;
  let appended = 0;
  let skipped = 0;
  try {
    for (const step of plan) {
      checkCancel(ctx);
      await imap.ensureFolder(loc, step.target);
      const present = await liveMessageIds(imap, loc, step.target);
      for (const m of step.messages) {
        checkCancel(ctx);
        const raw = await box.content(m);
        const id = parseHeaders(raw)['message-id'];
        const n = id ? present.get(id) ?? 0 : 0;
        if (id && n > 0) {
          present.set(id, n - 1);
          skipped++;
        } else {
          await imap.append(loc, step.target, raw, m.flags, m.internalDate);
          appended++;
        }
        done++;
        bytes += m.size;
        ctx.progress({ done, total, unit: 'messages', bytes, message: step.target });
      }
      ctx.info(`${step.target}: ${step.messages.length} messages`);
    }
  } finally {
    await imap.close();
  }
  if (skipped) ctx.info(`${skipped} messages were already there and were left alone`);
  return { mailbox: loc.imapLogin, folders: plan.map((x) => x.target), messages: appended, alreadyPresent: skipped, bytes };
}

// --- mail: the mailbox becomes what it was ----------------------------------------------------------------------

async function replaceMailbox(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const summary = await box.summary();
  const total = summary.reduce((n, f) => n + f.messages, 0);
  ctx.progress({ done: 0, total, unit: 'messages', message: `replacing ${loc.imapLogin} with ${total} messages in ${summary.length} folders` });
  let files = 0;
  let bytes = 0;
  let fetched = 0;
  await env.host.writers.trees.replaceMailbox(loc, async (staging) => {
    const r = await restore(env.repo, box.snapshot, {
      target: staging,
      include: [loc.partPath],
      progress: { update: (s) => ctx.progress({ done: Math.min(s.files, total), total, unit: 'messages', bytes: s.bytes }) },
    });
    checkCancel(ctx);
    if (r.errors) throw new Error(`restoring ${loc.partPath}: ${r.errors} errors${r.damage.length ? ': ' + r.damage.slice(0, 3).join('; ') : ''}`);
    files = r.files;
    bytes = r.bytes;
    fetched = r.bytesFetched;
    return path.join(staging, loc.partPath);
  });
  ctx.progress({ done: total, total, unit: 'messages', bytes });
  ctx.info(`${loc.imapLogin}: ${files} files back in the spool, index resynchronised`);
  return { mailbox: loc.imapLogin, folders: summary.length, messages: total, files, bytes, bytesReadFromRepository: fetched };
}

// --- calendars, address books, todolists ------------------------------------------------------------------------

function containersOf(p: PlannedRestore, type: ContainerType) {
  return p.entry.containers.filter((c) => c.type === type);
}

async function replaceContainers(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, type: ContainerType): Promise<Record<string, unknown>> {
  const list = containersOf(p, type);
  const total = list.reduce((n, c) => n + c.items, 0);
  ctx.progress({ done: 0, total, unit: 'items' });
  let done = 0;
  const restored: { uid: string; items: number }[] = [];
  for (const c of list) {
    checkCancel(ctx);
    const r = await env.host.writers.database.replaceContainer(readEntityExport(env.repo, p.catalog.database, c.path));
    done += r.items;
    restored.push({ uid: c.uid, items: r.items });
    ctx.info(`${c.uid} (${c.name}): ${r.items} items`);
    ctx.progress({ done, total, unit: 'items' });
  }
  if (list.length === 0) ctx.warn(`the generation holds no ${type} of ${p.entry.displayName}`);
  return { containers: restored, items: done };
}

function fileName(name: string, ext: string, used: Set<string>): string {
  let base = name.normalize('NFKD').replace(/[^A-Za-z0-9._ ()-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 150) || 'export';
  let n = 1;
  let out = `${base}.${ext}`;
  while (used.has(out)) out = `${base} (${++n}).${ext}`;
  used.add(out);
  return out;
}

/** Who receives a send.* export: the one asked for, else the user (user entities), else the administrator. */
export function sendRecipient(p: PlannedRestore): string | null {
  if (p.recipient) return p.recipient;
  if (p.entry.kind === 'USER' && p.entry.email) return p.entry.email;
  return p.actor.email;
}

async function sendExports(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, type: ContainerType): Promise<Record<string, unknown>> {
  const to = sendRecipient(p);
  if (!to) throw new InvalidInputError('recipient', 'nobody to send the export to: give a recipient');
  const list = containersOf(p, type);
  const ext = type === 'addressbook' ? 'vcf' : 'ics';
  const contentType = type === 'addressbook' ? 'text/vcard; charset=utf-8' : 'text/calendar; charset=utf-8';
  const used = new Set<string>();
  const attachments: { filename: string; content: string; contentType: string }[] = [];
  for (const [i, c] of list.entries()) {
    checkCancel(ctx);
    const text = await env.host.renderer.render(type, readEntityExport(env.repo, p.catalog.database, c.path));
    const filename = fileName(c.name || c.uid, ext, used);
    attachments.push({ filename, content: text, contentType });
    await ctx.attach(filename, text, contentType);
    ctx.progress({ done: i + 1, total: list.length, unit: 'containers' });
  }
  if (attachments.length === 0) throw new NotFoundError(`the generation holds no ${type} of ${p.entry.displayName}`);
  const what = type === 'addressbook' ? 'address books' : type === 'todolist' ? 'task lists' : 'calendars';
  const date = p.catalog.generation.time.toISOString().slice(0, 10);
  await env.mailer!.send({
    from: `no-reply@${p.entry.domainUid}`,
    to,
    subject: `Backup of ${p.entry.displayName}'s ${what} (${date})`,
    text: `A backup of the ${what} of ${p.entry.displayName}, as saved on ${date}, is attached to this message.\n`,
    attachments,
  });
  ctx.info(`sent ${attachments.map((a) => a.filename).join(', ')} to ${to}`);
  return { recipient: to, files: attachments.map((a) => a.filename) };
}

// --- directory ---------------------------------------------------------------------------------------------------

async function replaceOrgUnit(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const e = p.entry.entity;
  const outcome = await env.host.writers.directory.restoreOrgUnit(e.domainUid, e.uid, [...e.ouPath, e.name]);
  ctx.info(`organisational unit ${[...e.ouPath, e.name].join('/')}: ${outcome}`);
  return { orgUnit: e.uid, outcome };
}

async function completeUser(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const live = await env.host.directory.entity(p.entry.domainUid, p.entry.uid);
  if (live) throw new ConflictError(`${p.entry.displayName} exists again; complete.restore.user only restores a deleted user`);
  const db = (await env.host.databases()).find((d) => d.tag === DATABASE_TAG);
  if (!db) throw new Error('the host has no directory database');
  // The user's directory rows come from the dump, restored into a scratch database (as BlueMind does).
  const scratch = withDatabase(db.connection, `dp_restore_${randomBytes(6).toString('hex')}`);
  ctx.progress({ done: 0, total: 5, unit: 'steps', message: 'reading the directory as saved' });
  let groups: { groups: number; groupsGone: number };
  try {
    await restoreDatabase({ repo: env.repo, snapshot: p.catalog.database, target: scratch });
    checkCancel(ctx);
    groups = await env.host.writers.directory.restoreUser(scratch, p.entry.domainUid, p.entry.uid);
  } finally {
    await dropDatabase(scratch, scratch.database).catch((e: Error) => ctx.warn(`dropping ${scratch.database}: ${e.message}`));
  }
  ctx.info(`directory entry back; member again of ${groups.groups} groups${groups.groupsGone ? ` (${groups.groupsGone} no longer exist)` : ''}`);
  const result: Record<string, unknown> = { directory: true, groups: groups.groups };
  const step = async (n: number, op: RestoreOperationId, fn: () => Promise<Record<string, unknown>>) => {
    checkCancel(ctx);
    ctx.progress({ done: n, total: 5, unit: 'steps', message: op });
    result[op] = await fn();
  };
  const sub = { ...ctx, progress: () => {} } as RestoreContext;
  if (partSnapshot(p.catalog.generation, MAIL_TAG)) await step(1, 'replace.mailbox', () => replaceMailbox(env, { ...p, operation: 'replace.mailbox' }, sub));
  else ctx.warn(`generation ${p.catalog.generation.id} has no ${MAIL_TAG} part: the mailbox is not restored`);
  await step(2, 'replace.calendars', () => replaceContainers(env, p, sub, 'calendar'));
  await step(3, 'replace.books', () => replaceContainers(env, p, sub, 'addressbook'));
  await step(4, 'replace.todolists', () => replaceContainers(env, p, sub, 'todolist'));
  ctx.progress({ done: 5, total: 5, unit: 'steps' });
  return result;
}

async function restoreFileHosting(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const part = p.catalog.generation.parts.find((x) => x.tag === FILEHOSTING_TAG);
  if (!part) throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${FILEHOSTING_TAG} part`);
  const loc = (await env.host.dataLocations(part.server, FILEHOSTING_TAG))[0];
  if (!loc) throw new Error(`server ${part.server} keeps no file-hosting data`);
  const sub = `${loc.virtualPath}/${p.entry.domainUid}`;
  let files = 0;
  let bytes = 0;
  await env.host.writers.trees.replaceFileHosting(p.entry.domainUid, async (staging) => {
    const r = await restore(env.repo, part.snapshot, {
      target: staging,
      include: [sub],
      progress: { update: (s) => ctx.progress({ done: s.files, total: s.filesTotal, unit: 'files', bytes: s.bytes }) },
    }).catch((e: Error) => {
      // A domain without file-hosting data in the generation: the live data becomes empty, as it was.
      if (e.name === 'NotFoundError') return null;
      throw e;
    });
    if (r?.errors) throw new Error(`restoring ${sub}: ${r.errors} errors`);
    files = r?.files ?? 0;
    bytes = r?.bytes ?? 0;
    return path.join(staging, sub);
  });
  ctx.info(`file hosting of ${p.entry.domainUid}: ${files} files (${bytes} bytes)`);
  return { domain: p.entry.domainUid, files, bytes };
}
