// Mail restores: into the live mailbox through IMAP APPEND (a subfolder, a folder, some messages), or the whole
// mailbox swapped back from the saved Maildir subtree. Archived mail (the `mail/archive` part) comes back with its
// mailbox: swapped back with it, appended under `restored-…/Archived mail`, or written back into the archive.

import path from 'node:path';
import { restore } from '../../../engine/index.js';
import type { DirectoryEntity, ImapWriter, MailboxLocation } from '../../../host/port.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { partSnapshot, type GenerationView } from '../generation-parts.js';
import { ARCHIVE_FOLDER, ARCHIVE_IMAP_FOLDER, parseHeaders, SavedMailbox, type SavedMessage } from '../mailbox-reader.js';
import { ARCHIVE_TAG, checkCancel, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';

/** `restored-YYYY-MM-DD` of a generation's date (UTC, as the generation's id shows it). */
export function restoredFolderName(time: Date): string {
  return `restored-${time.toISOString().slice(0, 10)}`;
}

/** The mailbox of an entity as a generation saved it (with its archived mail when the generation holds it). */
export async function openSavedMailbox(env: RestoreEnv, g: GenerationView, entity: DirectoryEntity): Promise<{ box: SavedMailbox; loc: MailboxLocation }> {
  const loc = await env.host.mailboxLocation(entity);
  if (!loc) throw new InvalidInputError('entity', `${entity.displayName} has no mailbox`);
  const snap = partSnapshot(g, MAIL_TAG, loc.server);
  if (!snap) throw new InvalidInputError('operation', `generation ${g.id} has no ${MAIL_TAG} part of server ${loc.server}`);
  const archive = loc.archive ? partSnapshot(g, ARCHIVE_TAG, loc.server) : null;
  const box = new SavedMailbox(env.repo, snap, loc.partPath, archive && loc.archive ? { snapshot: archive, root: loc.archive.partPath } : null);
  await box.folders();
  return { box, loc };
}

/** The entity's mailbox as saved in the generation, and where it lives now. */
export async function savedMailbox(env: RestoreEnv, p: PlannedRestore): Promise<{ box: SavedMailbox; loc: MailboxLocation }> {
  return openSavedMailbox(env, p.catalog.generation, p.entry.entity);
}

/** What goes into one live folder: saved messages, each read from its own saved mailbox. */
export interface AppendStep {
  target: string;
  messages: { box: SavedMailbox; message: SavedMessage }[];
}

/** Message-IDs already in a live folder (a restore run twice appends nothing twice). */
async function liveMessageIds(imap: ImapWriter, loc: MailboxLocation, folder: string): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const id of await imap.messageIds(loc, folder)) ids.set(id, (ids.get(id) ?? 0) + 1);
  return ids;
}

/**
 * IMAP APPEND of each step's messages into `loc` (master user), with their saved flags and internal dates; a
 * message whose Message-ID is already in the target folder is skipped.
 */
export async function appendSteps(env: RestoreEnv, loc: MailboxLocation, plan: AppendStep[], ctx: RestoreContext): Promise<{ appended: number; skipped: number; bytes: number; total: number }> {
  const total = plan.reduce((n, x) => n + x.messages.length, 0);
  const totalBytes = plan.reduce((n, x) => n + x.messages.reduce((s, m) => s + m.message.size, 0), 0);
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
      for (const { box, message: m } of step.messages) {
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
      const count = step.messages.length;
      ctx.info(`${step.target}: ${count} ${count === 1 ? 'message' : 'messages'}`, { key: 'task.line.mail.folder', params: { folder: step.target, count } });
    }
  } finally {
    await imap.close();
  }
  reportCounts(ctx, appended, skipped, total);
  return { appended, skipped, bytes, total };
}

/** Counts say what happened: how many came back, how many were already there (a restore run twice). */
function reportCounts(ctx: RestoreContext, appended: number, skipped: number, total: number): void {
  ctx.info(`${appended} of ${total} ${total === 1 ? 'message was' : 'messages were'} restored`, { key: 'task.line.mail.appended', params: { count: appended, total } });
  if (skipped) {
    ctx.info(`${skipped} of ${total} ${total === 1 ? 'message was' : 'messages were'} already there and ${skipped === 1 ? 'was' : 'were'} left alone`, {
      key: 'task.line.mail.skipped',
      params: { count: skipped, total },
    });
  }
}

/** Every saved folder of a mailbox under `base` (INBOX onto it, archived mail onto `base/Archived mail`). */
export async function subfolderSteps(box: SavedMailbox, base: string): Promise<AppendStep[]> {
  const steps: AppendStep[] = [];
  for (const f of await box.folders()) {
    const target = f.archived ? `${base}/${ARCHIVE_IMAP_FOLDER}` : f.path === 'INBOX' ? base : `${base}/${f.path}`;
    steps.push({ target, messages: (await box.messages(f)).map((message) => ({ box, message })) });
  }
  return steps;
}

/** Archived messages written back into the mailbox's archive (those it still holds are left alone). */
async function restoreArchived(env: RestoreEnv, box: SavedMailbox, loc: MailboxLocation, messages: SavedMessage[], ctx: RestoreContext): Promise<Record<string, unknown>> {
  const total = messages.length;
  ctx.progress({ done: 0, total, unit: 'messages', bytes: 0, message: `restoring ${total} archived messages of ${loc.imapLogin}` });
  let appended = 0;
  let bytes = 0;
  for (const [i, m] of messages.entries()) {
    checkCancel(ctx);
    if (await env.host.writers.mail.writeArchived(loc, m.id, await box.content(m), m.internalDate)) appended++;
    bytes += m.size;
    ctx.progress({ done: i + 1, total, unit: 'messages', bytes, message: ARCHIVE_IMAP_FOLDER });
  }
  reportCounts(ctx, appended, total - appended, total);
  return { mailbox: loc.imapLogin, folders: [ARCHIVE_FOLDER], messages: appended, alreadyPresent: total - appended, bytes };
}

export async function appendMail(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, mode: 'subfolder' | 'folder' | 'messages'): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const folders = await box.folders();
  let plan: AppendStep[] = [];
  const withBox = (ms: SavedMessage[]) => ms.map((message) => ({ box, message }));
  if (mode === 'subfolder') {
    plan = await subfolderSteps(box, restoredFolderName(p.catalog.generation.time));
  } else if (p.folder === ARCHIVE_FOLDER) {
    // Archived mail goes back where it was: into the archive, not into an IMAP folder.
    let messages = await box.messages(await box.folder(ARCHIVE_FOLDER));
    if (mode === 'messages') messages = pick(messages, p);
    return restoreArchived(env, box, loc, messages, ctx);
  } else if (mode === 'folder') {
    for (const f of folders.filter((x) => !x.archived && (x.path === p.folder || x.path.startsWith(`${p.folder}/`)))) plan.push({ target: f.path, messages: withBox(await box.messages(f)) });
  } else {
    const f = await box.folder(p.folder!);
    plan.push({ target: f.path, messages: withBox(pick(await box.messages(f), p)) });
  }
  const r = await appendSteps(env, loc, plan, ctx);
  return { mailbox: loc.imapLogin, folders: plan.map((x) => x.target), messages: r.appended, alreadyPresent: r.skipped, bytes: r.bytes };
}

/** The chosen messages of a folder; NotFoundError names those the generation does not hold. */
function pick(messages: SavedMessage[], p: PlannedRestore): SavedMessage[] {
  const wanted = new Set(p.messageIds);
  const out = messages.filter((m) => wanted.has(m.id));
  const missing = [...wanted].filter((id) => !out.some((m) => m.id === id));
  if (missing.length) throw new NotFoundError(`messages not in folder ${p.folder} of the generation: ${missing.slice(0, 5).join(', ')}`);
  return out;
}

// --- the mailbox becomes what it was -----------------------------------------------------------------------------

export async function replaceMailbox(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const summary = await box.summary();
  const archived = summary.find((f) => f.archived);
  const total = summary.reduce((n, f) => n + f.messages, 0);
  ctx.progress({ done: 0, total, unit: 'messages', message: `replacing ${loc.imapLogin} with ${total} messages in ${summary.length} folders` });
  let files = 0;
  let bytes = 0;
  let fetched = 0;
  const track = (r: { files: number; bytes: number; bytesFetched: number }) => {
    files += r.files;
    bytes += r.bytes;
    fetched += r.bytesFetched;
  };
  await env.host.writers.trees.replaceMailbox(loc, async (staging) => {
    const r = await restore(env.repo, box.snapshot, {
      target: staging,
      include: [loc.partPath],
      progress: { update: (s) => ctx.progress({ done: Math.min(s.files, total), total, unit: 'messages', bytes: s.bytes }) },
    });
    checkCancel(ctx);
    if (r.errors) throw new Error(`restoring ${loc.partPath}: ${r.errors} errors${r.damage.length ? ': ' + r.damage.slice(0, 3).join('; ') : ''}`);
    track(r);
    return path.join(staging, loc.partPath);
  });
  // The archive becomes what it was too, when the generation saved it (an archive saved empty is emptied).
  if (box.archive && loc.archive) {
    const archive = box.archive;
    const where = loc.archive.partPath;
    await env.host.writers.trees.replaceArchive(loc, async (staging) => {
      if (!archived) return path.join(staging, 'empty');
      const r = await restore(env.repo, archive.snapshot, { target: staging, include: [where] });
      checkCancel(ctx);
      if (r.errors) throw new Error(`restoring ${where}: ${r.errors} errors`);
      track(r);
      return path.join(staging, where);
    });
    ctx.info(`${loc.imapLogin}: ${archived?.messages ?? 0} archived messages back in the archive`);
  }
  ctx.progress({ done: total, total, unit: 'messages', bytes });
  ctx.info(`${loc.imapLogin}: ${files} files back in the spool, index resynchronised`);
  return { mailbox: loc.imapLogin, folders: summary.length, messages: total, archivedMessages: archived?.messages ?? 0, files, bytes, bytesReadFromRepository: fetched };
}
